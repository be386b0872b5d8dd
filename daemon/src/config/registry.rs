//! `[registry."host"]` tables (buildkitd's keys) and nodekit's own registry settings, turned into
//! the worker's [`RegistryHosts`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::file::Registry;
use super::ConfigError;
use crate::worker::{HostConfig, RegistryHosts};

/// containerd's usual `config_path` for registry hosts; used when it exists and no other
/// directory is configured.
pub const DEFAULT_CONTAINERD_HOSTS_DIR: &str = "/etc/containerd/certs.d";

pub fn registry_hosts(
    registries: &BTreeMap<String, Registry>,
    auth_file: Option<PathBuf>,
    containerd_hosts_dir: Option<PathBuf>,
) -> Result<RegistryHosts, ConfigError> {
    let hosts = registries
        .iter()
        .map(|(host, registry)| Ok((host.clone(), host_config(host, registry)?)))
        .collect::<Result<_, ConfigError>>()?;
    let containerd_hosts_dir = containerd_hosts_dir.or_else(|| {
        let default = Path::new(DEFAULT_CONTAINERD_HOSTS_DIR);
        default.is_dir().then(|| default.to_path_buf())
    });
    Ok(RegistryHosts {
        hosts,
        containerd_hosts_dir,
        auth_file,
    })
}

fn host_config(host: &str, registry: &Registry) -> Result<HostConfig, ConfigError> {
    let invalid = |reason: String| ConfigError::Registry {
        host: host.into(),
        reason,
    };
    for mirror in &registry.mirrors {
        if mirror.contains('/') {
            return Err(invalid(format!(
                "mirror {mirror:?}: give a host[:port] (a scheme or a path is not supported)"
            )));
        }
    }
    let mut ca = registry.ca.clone();
    let mut pairs: Vec<(PathBuf, PathBuf)> = registry
        .keypair
        .iter()
        .map(|k| (k.cert.clone(), k.key.clone()))
        .collect();
    if let Some(dir) = &registry.tlsconfigdir {
        let found = tls_config_dir(dir).map_err(invalid)?;
        ca.extend(found.cas);
        pairs.extend(found.pairs);
    }
    if pairs.len() > 1 {
        return Err(invalid(format!(
            "{} client certificates; nodekitd presents one per registry",
            pairs.len()
        )));
    }
    Ok(HostConfig {
        mirrors: registry.mirrors.clone(),
        http: registry.http,
        insecure: registry.insecure,
        ca,
        keypair: pairs.pop(),
    })
}

/// What a `tlsconfigdir` holds, as buildkitd reads it: `*.crt` files are CAs, `X.cert` with
/// `X.key` a client certificate.
struct TlsConfigDir {
    cas: Vec<PathBuf>,
    pairs: Vec<(PathBuf, PathBuf)>,
}

fn tls_config_dir(dir: &Path) -> Result<TlsConfigDir, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("tlsconfigdir {}: {e}", dir.display()))?;
    let mut found = TlsConfigDir {
        cas: Vec::new(),
        pairs: Vec::new(),
    };
    for path in entries.flatten().map(|e| e.path()) {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => found.cas.push(path),
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.is_file() {
                    return Err(format!(
                        "tlsconfigdir {}: {} has no {}",
                        dir.display(),
                        path.display(),
                        key.display()
                    ));
                }
                found.pairs.push((path, key));
            }
            _ => {}
        }
    }
    found.cas.sort();
    found.pairs.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_host_settings_and_bad_mirrors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
        let registry = Registry {
            mirrors: vec!["mirror.local:5000".into()],
            http: Some(true),
            insecure: true,
            tlsconfigdir: Some(dir.path().into()),
            ..Default::default()
        };
        let registries = BTreeMap::from([("docker.io".to_string(), registry)]);
        let hosts = registry_hosts(&registries, None, Some("/nowhere".into())).unwrap();
        let own = &hosts.hosts["docker.io"];
        assert_eq!(own.mirrors, ["mirror.local:5000"]);
        assert_eq!((own.http, own.insecure), (Some(true), true));
        assert_eq!(own.ca, [dir.path().join("ca.crt")]);
        assert_eq!(own.keypair, None);

        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let registry = Registry {
            tlsconfigdir: Some(dir.path().into()),
            ..Default::default()
        };
        let registries = BTreeMap::from([("r.example".to_string(), registry)]);
        let error = registry_hosts(&registries, None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("client.key"), "{error}");
        std::fs::write(dir.path().join("client.key"), "x").unwrap();
        let hosts = registry_hosts(&registries, None, None).unwrap();
        assert_eq!(
            hosts.hosts["r.example"].keypair,
            Some((
                dir.path().join("client.cert"),
                dir.path().join("client.key")
            ))
        );

        let bad = Registry {
            mirrors: vec!["https://mirror.local/v2".into()],
            ..Default::default()
        };
        let registries = BTreeMap::from([("docker.io".to_string(), bad)]);
        let error = registry_hosts(&registries, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("docker.io") && error.contains("https://mirror.local/v2"),
            "{error}"
        );
    }
}
