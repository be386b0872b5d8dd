//! A step's private directory under local-mount-source-root: FIFOs, /etc/hosts and
//! /etc/resolv.conf sources, the rootfs probe mount. Removed when the step ends.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{WorkerError, WorkerResult};

const HOSTS: &str = "127.0.0.1\tlocalhost nodekit\n::1\tlocalhost ip6-localhost ip6-loopback\n";

pub struct StepDir {
    path: PathBuf,
}

impl StepDir {
    /// The directory for step `id`, its /etc/hosts with `extra_hosts` (host, IP) appended.
    pub fn create(
        root: &Path,
        id: &str,
        extra_hosts: &[(String, String)],
    ) -> WorkerResult<StepDir> {
        let path = root.join(id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| WorkerError::io(format!("creating {}", path.display()), e))?;
        let dir = StepDir { path };
        dir.write_etc_files(extra_hosts)?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn hosts(&self) -> PathBuf {
        self.path.join("hosts")
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.path.join("resolv.conf")
    }

    fn write_etc_files(&self, extra_hosts: &[(String, String)]) -> WorkerResult<()> {
        // The host's resolver configuration, copied so that every bind source lives here.
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        let mut hosts = HOSTS.to_string();
        for (host, ip) in extra_hosts {
            hosts.push_str(&format!("{ip}\t{host}\n"));
        }
        for (path, bytes) in [
            (self.hosts(), hosts.as_bytes()),
            (self.resolv_conf(), &resolv[..]),
        ] {
            std::fs::write(&path, bytes)
                .and_then(|_| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                })
                .map_err(|e| WorkerError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "could not remove step directory");
        }
    }
}
