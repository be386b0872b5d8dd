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
    if let Some(dir) = &registry.tlsconfigdir {
        ca.extend(tls_config_dir_cas(dir).map_err(invalid)?);
    }
    Ok(HostConfig {
        mirrors: registry.mirrors.clone(),
        http: registry.http,
        insecure: registry.insecure,
        ca,
    })
}

/// buildkitd's `tlsconfigdir`: `*.crt` files are CAs; `X.cert` with `X.key` would be a client
/// certificate, which nodekit cannot present yet.
fn tls_config_dir_cas(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("tlsconfigdir {}: {e}", dir.display()))?;
    let mut cas = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => cas.push(path),
            Some("cert") => {
                return Err(format!(
                    "tlsconfigdir {}: client certificate {} is not supported yet",
                    dir.display(),
                    path.display()
                ))
            }
            _ => {}
        }
    }
    cas.sort();
    Ok(cas)
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
