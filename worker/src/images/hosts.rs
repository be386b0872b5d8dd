//! Where and how a registry is reached: its mirrors first (pull only), then the registry itself;
//! plain HTTP or TLS with extra CAs or without verification. Settings come from nodekit's
//! `[registry."host"]` tables (as buildkitd's) and, for hosts they do not name, from the node's
//! containerd registry configuration (`<config_path>/<host>/hosts.toml`), so a node's mirrors
//! and CAs apply to builds with no extra setup.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use oci_spec::distribution::Reference;
use toml::de::{DeTable, DeValue};

use super::distribution::Transport;

/// nodekit's settings of one registry host (`[registry."host"]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Hosts (`host[:port]`) tried before this one for pulls.
    pub mirrors: Vec<String>,
    /// Plain HTTP; `None`: only for loopback hosts.
    pub http: Option<bool>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra CA certificates (PEM files) for this host.
    pub ca: Vec<PathBuf>,
    /// A client certificate and its key (PEM files) to present to this host.
    pub keypair: Option<(PathBuf, PathBuf)>,
}

/// How registries are reached, and with whose credentials when a build's client has none.
#[derive(Clone, Debug, Default)]
pub struct RegistryHosts {
    /// nodekit's own settings, by host as references name it (`docker.io`, `127.0.0.1:5000`).
    pub hosts: BTreeMap<String, HostConfig>,
    /// containerd's registry host directory (its `config_path`), read for hosts `hosts` lacks.
    pub containerd_hosts_dir: Option<PathBuf>,
    /// A docker config file with credentials for builds whose client sends none.
    pub auth_file: Option<PathBuf>,
}

/// One place to pull from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as the client contacts it.
    pub host: String,
    pub transport: Transport,
    /// A mirror (its failure falls through to the next endpoint).
    pub mirror: bool,
}

impl RegistryHosts {
    /// Where to pull `registry`'s images from, in order: mirrors, then the registry itself.
    pub fn endpoints(&self, registry: &str, api_host: &str) -> Vec<Endpoint> {
        if let Some(own) = self.hosts.get(registry) {
            let mut endpoints: Vec<Endpoint> =
                own.mirrors.iter().map(|m| self.endpoint(m, true)).collect();
            endpoints.push(self.endpoint_with(api_host, own, false));
            return endpoints;
        }
        if let Some(dir) = &self.containerd_hosts_dir {
            match containerd_endpoints(dir, registry, api_host) {
                Ok(Some(endpoints)) => return endpoints,
                Ok(None) => {}
                Err(reason) => tracing::warn!(
                    "ignoring containerd's registry configuration for {registry}: {reason}"
                ),
            }
        }
        vec![self.endpoint(api_host, false)]
    }

    fn endpoint(&self, host: &str, mirror: bool) -> Endpoint {
        let own = self.hosts.get(host).cloned().unwrap_or_default();
        self.endpoint_with(host, &own, mirror)
    }

    fn endpoint_with(&self, host: &str, own: &HostConfig, mirror: bool) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            transport: Transport {
                plain_http: own.http.unwrap_or_else(|| is_loopback(host)),
                insecure: own.insecure,
                ca: own.ca.clone(),
                keypair: own.keypair.clone(),
            },
            mirror,
        }
    }
}

impl Endpoint {
    /// `reference` as this endpoint serves it (a mirror keeps the repository path).
    pub fn reference(&self, reference: &Reference) -> Reference {
        let repository = reference.repository().to_string();
        match (reference.tag(), reference.digest()) {
            (Some(tag), Some(digest)) => Reference::with_tag_and_digest(
                self.host.clone(),
                repository,
                tag.to_string(),
                digest.to_string(),
            ),
            (None, Some(digest)) => {
                Reference::with_digest(self.host.clone(), repository, digest.to_string())
            }
            (tag, None) => Reference::with_tag(
                self.host.clone(),
                repository,
                tag.unwrap_or("latest").to_string(),
            ),
        }
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The endpoints containerd's `hosts.toml` for `registry` (or its `_default`) gives, if any: its `[host."…"]`
/// entries that may pull, in file order, then `server` (default: the registry itself).
fn containerd_endpoints(
    dir: &Path,
    registry: &str,
    api_host: &str,
) -> Result<Option<Vec<Endpoint>>, String> {
    // containerd's order: the host's own directory, else `_default`.
    let mut found = None;
    for name in [registry, "_default"] {
        let file = dir.join(name).join("hosts.toml");
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                found = Some((file, text));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", file.display())),
        }
    }
    let Some((file, text)) = found else {
        return Ok(None);
    };
    let root = DeTable::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let root = root.get_ref();
    let mut endpoints = Vec::new();
    if let Some(DeValue::Table(hosts)) = root.get("host").map(|v| v.get_ref()) {
        let mut entries: Vec<_> = hosts.iter().collect();
        // The file's order is the order mirrors are tried in.
        entries.sort_by_key(|(key, _)| key.span().start);
        for (url, entry) in entries {
            if let DeValue::Table(entry) = entry.get_ref() {
                match containerd_host(url.get_ref(), entry, true) {
                    Ok(Some(endpoint)) => endpoints.push(endpoint),
                    Ok(None) => {}
                    Err(reason) => tracing::warn!(
                        "{}: host {url}: {reason}; skipped",
                        file.display(),
                        url = url.get_ref()
                    ),
                }
            }
        }
    }
    let origin = match root.get("server").map(|v| v.get_ref()) {
        Some(DeValue::String(server)) => containerd_host(server, root, false)?,
        _ => None,
    };
    endpoints.push(origin.unwrap_or_else(|| Endpoint {
        host: api_host.to_string(),
        transport: Transport {
            plain_http: is_loopback(api_host),
            ..Default::default()
        },
        mirror: false,
    }));
    Ok(Some(endpoints))
}

/// One `[host."scheme://host"]` entry (or `server` with the file's top-level settings); `None`
/// when it may not pull.
fn containerd_host(
    url: &str,
    entry: &DeTable<'_>,
    mirror: bool,
) -> Result<Option<Endpoint>, String> {
    let field = |name: &str| entry.get(name).map(|v| v.get_ref());
    // What containerd would do with these nodekit does not: a host asking for them is skipped
    // (with a warning naming the key) rather than used with other semantics.
    for unsupported in ["header", "override_path", "dial_timeout"] {
        if field(unsupported).is_some() {
            return Err(format!("`{unsupported}` is not supported"));
        }
    }
    if let Some(DeValue::Array(capabilities)) = field("capabilities") {
        let pulls = capabilities
            .iter()
            .any(|c| matches!(c.get_ref(), DeValue::String(s) if s == "pull"));
        if !pulls {
            return Ok(None);
        }
    }
    let (plain_http, rest) = match url.split_once("://") {
        Some(("http", rest)) => (true, rest),
        Some(("https", rest)) => (false, rest),
        Some((scheme, _)) => return Err(format!("unknown scheme {scheme}")),
        None => (false, url),
    };
    let host = rest.trim_end_matches('/');
    if host.contains('/') {
        return Err("a path after the host is not supported".into());
    }
    let ca = match field("ca") {
        Some(DeValue::String(path)) => vec![PathBuf::from(path.as_ref())],
        Some(DeValue::Array(paths)) => paths
            .iter()
            .filter_map(|p| match p.get_ref() {
                DeValue::String(path) => Some(PathBuf::from(path.as_ref())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Endpoint {
        host: host.to_string(),
        transport: Transport {
            plain_http,
            insecure: matches!(field("skip_verify"), Some(DeValue::Boolean(true))),
            ca,
            keypair: containerd_client_pair(field("client"))?,
        },
        mirror,
    }))
}

/// `client = "cert.pem"` (key in the same file), `client = ["cert", "key"]` or
/// `client = [["cert", "key"]]` (the first pair; containerd tries each).
fn containerd_client_pair(
    value: Option<&DeValue<'_>>,
) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let text = |v: &DeValue<'_>| match v {
        DeValue::String(s) => Some(PathBuf::from(s.as_ref())),
        _ => None,
    };
    let pair = |items: &[toml::Spanned<DeValue<'_>>]| match items {
        [cert, key] => Some((text(cert.get_ref())?, text(key.get_ref())?)),
        _ => None,
    };
    match value {
        None => Ok(None),
        Some(DeValue::String(path)) => Ok(Some((
            PathBuf::from(path.as_ref()),
            PathBuf::from(path.as_ref()),
        ))),
        Some(DeValue::Array(items)) => match items.first().map(|i| i.get_ref()) {
            Some(DeValue::Array(first)) => pair(first)
                .map(Some)
                .ok_or_else(|| "client: expected [cert, key]".to_string()),
            _ => pair(items)
                .map(Some)
                .ok_or_else(|| "client: expected [cert, key]".to_string()),
        },
        Some(_) => Err("client: expected a path or [cert, key]".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognised() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["registry.example.com", "10.0.0.1:5000", "docker.io"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn own_settings_give_mirrors_first_and_win_over_containerds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docker.io")).unwrap();
        std::fs::write(
            dir.path().join("docker.io/hosts.toml"),
            "server = \"https://registry-1.docker.io\"\n[host.\"http://from-containerd:5000\"]\n",
        )
        .unwrap();
        let mut hosts = RegistryHosts {
            containerd_hosts_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let from_containerd = hosts.endpoints("docker.io", "index.docker.io");
        assert_eq!(from_containerd[0].host, "from-containerd:5000");
        assert!(from_containerd[0].transport.plain_http && from_containerd[0].mirror);
        assert_eq!(from_containerd[1].host, "registry-1.docker.io");

        hosts.hosts.insert(
            "docker.io".into(),
            HostConfig {
                mirrors: vec!["mirror.local:5000".into()],
                ..Default::default()
            },
        );
        hosts.hosts.insert(
            "mirror.local:5000".into(),
            HostConfig {
                http: Some(true),
                ..Default::default()
            },
        );
        let own = hosts.endpoints("docker.io", "index.docker.io");
        let hosts_of: Vec<_> = own
            .iter()
            .map(|e| (e.host.as_str(), e.transport.plain_http, e.mirror))
            .collect();
        assert_eq!(
            hosts_of,
            [
                ("mirror.local:5000", true, true),
                ("index.docker.io", false, false)
            ]
        );
    }

    #[test]
    fn containerd_hosts_keep_file_order_and_skip_what_cannot_pull() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("r.example")).unwrap();
        std::fs::write(
            dir.path().join("r.example/hosts.toml"),
            "[host.\"https://zz.example\"]\nca = \"/etc/ca.pem\"\n[host.\"https://push-only.example\"]\ncapabilities = [\"push\"]\n[host.\"https://aa.example\"]\nskip_verify = true\ncapabilities = [\"pull\", \"resolve\"]\n",
        )
        .unwrap();
        let hosts = RegistryHosts {
            containerd_hosts_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let endpoints = hosts.endpoints("r.example", "r.example");
        let names: Vec<_> = endpoints.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(names, ["zz.example", "aa.example", "r.example"]);
        assert_eq!(endpoints[0].transport.ca, [PathBuf::from("/etc/ca.pem")]);
        assert!(endpoints[1].transport.insecure);

        // A host without a directory of its own takes `_default`'s.
        assert_eq!(hosts.endpoints("other.example", "other.example").len(), 1);

        // A host with settings nodekit cannot honour is skipped, not used without them.
        std::fs::create_dir_all(dir.path().join("h.example")).unwrap();
        std::fs::write(
            dir.path().join("h.example/hosts.toml"),
            "[host.\"https://m.example\"]\n[host.\"https://m.example\".header]\nx-token = \"t\"\n",
        )
        .unwrap();
        let names: Vec<_> = hosts
            .endpoints("h.example", "h.example")
            .into_iter()
            .map(|e| e.host)
            .collect();
        assert_eq!(names, ["h.example"]);
        std::fs::create_dir_all(dir.path().join("_default")).unwrap();
        std::fs::write(
            dir.path().join("_default/hosts.toml"),
            "[host.\"https://everyone.example\"]\n",
        )
        .unwrap();
        let endpoints = hosts.endpoints("other.example", "other.example");
        let names: Vec<_> = endpoints.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(names, ["everyone.example", "other.example"]);
    }

    #[test]
    fn a_mirror_keeps_the_repository_and_the_tag_or_digest() {
        let endpoint = Endpoint {
            host: "mirror:5000".into(),
            transport: Transport::default(),
            mirror: true,
        };
        let original: Reference = "docker.io/library/busybox:1".parse().unwrap();
        assert_eq!(
            endpoint.reference(&original).whole(),
            "mirror:5000/library/busybox:1"
        );
    }
}
