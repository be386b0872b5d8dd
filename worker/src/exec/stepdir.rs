//! A step's private directory under local-mount-source-root: FIFOs, /etc/hosts and
//! /etc/resolv.conf sources, the rootfs probe mount. Removed when the step ends.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{WorkerError, WorkerResult};

/// buildkitd's `[dns]`: what steps resolve with instead of the host's settings (each list,
/// when given, replaces the host's lines of its kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub options: Vec<String>,
    pub search_domains: Vec<String>,
}

/// What a step's /etc/hosts and /etc/resolv.conf say.
pub struct EtcFiles<'a> {
    pub hostname: &'a str,
    /// `(host, IP)` pairs appended to /etc/hosts.
    pub extra_hosts: &'a [(String, String)],
    pub dns: &'a Dns,
}

pub struct StepDir {
    path: PathBuf,
}

impl StepDir {
    /// The directory for step `id`, with the step's /etc/hosts and /etc/resolv.conf.
    pub fn create(root: &Path, id: &str, etc: &EtcFiles<'_>) -> WorkerResult<StepDir> {
        let path = root.join(id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| WorkerError::io(format!("creating {}", path.display()), e))?;
        let dir = StepDir { path };
        dir.write_etc_files(etc)?;
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

    fn write_etc_files(&self, etc: &EtcFiles<'_>) -> WorkerResult<()> {
        // The host's resolver configuration, copied so that every bind source lives here.
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = resolv_conf(&host_resolv, etc.dns);
        let mut hosts = format!(
            "127.0.0.1\tlocalhost {}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            etc.hostname
        );
        for (host, ip) in etc.extra_hosts {
            hosts.push_str(&format!("{ip}\t{host}\n"));
        }
        for (path, bytes) in [
            (self.hosts(), hosts.as_bytes()),
            (self.resolv_conf(), resolv.as_bytes()),
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

/// The host's resolv.conf with the configured lists in place of its own.
fn resolv_conf(host: &str, dns: &Dns) -> String {
    let replaced = |line: &str, keyword: &str, list: &[String]| {
        !list.is_empty() && line.split_whitespace().next() == Some(keyword)
    };
    let mut text: String = host
        .lines()
        .filter(|l| !replaced(l, "nameserver", &dns.nameservers))
        .filter(|l| !replaced(l, "search", &dns.search_domains))
        .filter(|l| !replaced(l, "options", &dns.options))
        .map(|l| format!("{l}\n"))
        .collect();
    for server in &dns.nameservers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.search_domains.is_empty() {
        text.push_str(&format!("search {}\n", dns.search_domains.join(" ")));
    }
    if !dns.options.is_empty() {
        text.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    text
}

impl Drop for StepDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "could not remove step directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_lists_replace_the_hosts_own() {
        let host = "# generated\nnameserver 10.0.0.2\nsearch corp.example\noptions ndots:5\n";
        assert_eq!(resolv_conf(host, &Dns::default()), host);
        let dns = Dns {
            nameservers: vec!["1.1.1.1".into(), "8.8.8.8".into()],
            search_domains: vec!["a.example".into(), "b.example".into()],
            options: Vec::new(),
        };
        assert_eq!(
            resolv_conf(host, &dns),
            "# generated\noptions ndots:5\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch a.example b.example\n"
        );
    }
}
