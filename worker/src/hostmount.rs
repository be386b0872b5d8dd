//! Mounting a snapshot on the host for a moment (reading /etc/passwd, tidying mount stubs).
//! Mount points live under local-mount-source-root and are unmounted and removed on drop.

use std::path::{Path, PathBuf};

use containerd_client::types::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::error::{WorkerError, WorkerResult};
use super::overlay_mount;

#[derive(Debug)]
pub struct HostMount {
    target: PathBuf,
    mounted: usize,
}

impl HostMount {
    /// Mounts `mounts` (as containerd returns them for a snapshot) at a new directory `target`.
    pub fn mount(mounts: &[Mount], target: &Path) -> WorkerResult<HostMount> {
        std::fs::create_dir_all(target)
            .map_err(|e| WorkerError::io(format!("creating {}", target.display()), e))?;
        let mut host = HostMount {
            target: target.to_path_buf(),
            mounted: 0,
        };
        for m in mounts {
            mount_one(m, target)?;
            host.mounted += 1;
        }
        Ok(host)
    }

    pub fn path(&self) -> &Path {
        &self.target
    }
}

fn mount_one(m: &Mount, target: &Path) -> WorkerResult<()> {
    let (flags, data) = split_options(&m.options);
    let fstype = if m.r#type == "bind" {
        None
    } else {
        Some(m.r#type.as_str())
    };
    let mounted = if m.r#type == "overlay" && data.len() > overlay_mount::MOUNT_DATA_MAX {
        let (parent, data) = overlay_mount::compact(&data)?;
        overlay_mount::mount_in(&parent, target, flags, &data)
    } else {
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(m.source.as_str()), target, fstype, flags, data)
    };
    mounted.map_err(|errno| {
        WorkerError::io(
            format!(
                "mounting {} ({}) at {}",
                m.source,
                m.r#type,
                target.display()
            ),
            std::io::Error::from(errno),
        )
    })
}

/// Separates mount(2) flags from filesystem data in a containerd option list.
fn split_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

impl Drop for HostMount {
    fn drop(&mut self) {
        for _ in 0..self.mounted {
            if let Err(errno) = umount2(&self.target, MntFlags::MNT_DETACH) {
                tracing::warn!(path = %self.target.display(), %errno, "unmount failed");
            }
        }
        let _ = std::fs::remove_dir(&self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_split_into_flags_and_data() {
        let options = ["ro", "workdir=/w", "upperdir=/u", "lowerdir=/l"].map(String::from);
        let (flags, data) = split_options(&options);
        assert_eq!(flags, MsFlags::MS_RDONLY);
        assert_eq!(data, "workdir=/w,upperdir=/u,lowerdir=/l");
        let (flags, data) = split_options(&["rbind".to_string(), "rw".to_string()]);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(data.is_empty());
    }
}
