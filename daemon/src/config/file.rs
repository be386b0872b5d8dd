//! The buildkitd.toml subset nodekit reads. Sections it does not know are ignored, so an
//! existing buildkitd.toml works unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub root: Option<PathBuf>,
    pub debug: bool,
    #[serde(rename = "local-mount-source-root")]
    pub local_mount_source_root: Option<PathBuf>,
    /// nodekit's own: where static qemu emulators are (`qemu-aarch64-static`, ...).
    #[serde(rename = "qemu-dir")]
    pub qemu_dir: Option<PathBuf>,
    pub grpc: Grpc,
    pub worker: Workers,
    pub registry: BTreeMap<String, Registry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Grpc {
    pub address: Vec<String>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Registry {
    /// Reach this registry over plain HTTP.
    pub http: bool,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
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
    fn unknown_sections_of_a_buildkitd_toml_are_ignored() {
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
