//! The buildkitd.toml keys nodekit honours. Every other key is reported by [`super::audit`]:
//! an existing buildkitd.toml loads unless it asks for something nodekit would not do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::audit::Severity;
use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub root: Option<PathBuf>,
    pub debug: bool,
    #[serde(rename = "local-mount-source-root")]
    pub local_mount_source_root: Option<PathBuf>,
    /// nodekit's own: a docker config with registry credentials for builds whose client has none.
    #[serde(rename = "registry-auth-file")]
    pub registry_auth_file: Option<PathBuf>,
    /// nodekit's own: containerd's registry host directory (its `config_path`).
    #[serde(rename = "containerd-hosts-dir")]
    pub containerd_hosts_dir: Option<PathBuf>,
    /// nodekit's own: where static qemu emulators are (`qemu-aarch64-static`, ...).
    #[serde(rename = "qemu-dir")]
    pub qemu_dir: Option<PathBuf>,
    /// buildkitd's `insecure-entitlements`: what builds may ask for (`security.insecure`,
    /// `network.host`).
    #[serde(rename = "insecure-entitlements")]
    pub insecure_entitlements: Vec<String>,
    pub grpc: Grpc,
    pub log: Log,
    /// nodekit's own: how long running builds may finish after SIGTERM (`30s`, `10m`).
    #[serde(rename = "shutdown-grace")]
    pub shutdown_grace: Option<String>,
    pub dns: Dns,
    pub worker: Workers,
    pub registry: BTreeMap<String, Registry>,
    /// buildkitd's build history retention; its defaults apply only when the table is absent.
    pub history: Option<History>,
    pub frontend: Frontends,
    /// nodekit's own: bounds on downloads and archive extractions.
    pub limits: super::limits::LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Frontends {
    #[serde(rename = "gateway.v0")]
    pub gateway: GatewayFrontend,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GatewayFrontend {
    pub enabled: Option<bool>,
    #[serde(rename = "allowedRepositories")]
    pub allowed_repositories: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct History {
    #[serde(
        rename = "maxAge",
        deserialize_with = "cachestore::gc::deserialize_duration"
    )]
    pub max_age: std::time::Duration,
    #[serde(rename = "maxEntries")]
    pub max_entries: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Log {
    /// `text` or `json`.
    pub format: Option<String>,
}

/// buildkitd's `[dns]`: what RUN steps resolve names with.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub options: Vec<String>,
    #[serde(rename = "searchDomains")]
    pub search_domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Grpc {
    pub address: Vec<String>,
    #[serde(rename = "debugAddress")]
    pub debug_address: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub tls: GrpcTls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GrpcTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Workers {
    pub containerd: ContainerdWorker,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerdWorker {
    pub address: Option<PathBuf>,
    pub namespace: Option<String>,
    pub snapshotter: Option<String>,
    /// Whether the build cache is garbage-collected (buildkitd's `gc`, default on).
    pub gc: Option<bool>,
    /// buildkitd's `[[worker.containerd.gcpolicy]]` rules, applied in order.
    pub gcpolicy: Vec<cachestore::GcPolicy>,
    /// The platforms `debug workers` advertises (default: those the node can run).
    pub platforms: Vec<String>,
    /// Extra worker labels, shown by `debug workers` and to frontends.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Registry {
    /// Hosts tried before this registry for pulls.
    pub mirrors: Vec<String>,
    /// Reach this registry over plain HTTP (unset: only loopback registries are).
    pub http: Option<bool>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra CA certificates (PEM files).
    pub ca: Vec<PathBuf>,
    /// A directory of CA certificates (`*.crt`) and client certificates (`X.cert` with `X.key`).
    pub tlsconfigdir: Option<PathBuf>,
    /// Client certificates (`[[registry."host".keypair]]` with `key` and `cert`).
    pub keypair: Vec<Keypair>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Keypair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl ConfigFile {
    /// Reads and audits the file: its warnings (`FILE:LINE: key: why`) come back with it; a key
    /// nodekit would not honour makes it an error that lists them all.
    pub fn read(path: &Path) -> Result<(ConfigFile, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::from_text(path, &text)
    }

    /// [`ConfigFile::read`] on a text already read (`path` names it in messages).
    pub fn from_text(path: &Path, text: &str) -> Result<(ConfigFile, Vec<String>), ConfigError> {
        let file = ConfigFile::parse(path, text)?;
        let findings = super::audit::audit(text);
        let report = |severity| {
            findings
                .iter()
                .filter(|f| f.severity == severity)
                .map(|f| format!("{}:{f}", path.display()))
                .collect::<Vec<_>>()
        };
        let errors = report(Severity::Error);
        if !errors.is_empty() {
            return Err(ConfigError::Unsupported {
                path: path.to_path_buf(),
                findings: errors.join("\n  "),
            });
        }
        Ok((file, report(Severity::Warning)))
    }

    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_nodekit_does_not_honour_do_not_stop_parsing_the_rest() {
        let text = "debug = true\n[worker.oci]\nenabled = false\n[worker.containerd]\ngc = true\n";
        let file = ConfigFile::parse(Path::new("b.toml"), text).unwrap();
        assert!(file.debug);
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let error = ConfigFile::parse(Path::new("b.toml"), "root = \n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("b.toml") && error.contains("line 1"),
            "{error}"
        );
    }
}
