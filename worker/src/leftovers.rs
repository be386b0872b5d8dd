//! What a killed daemon leaves under local-mount-source-root: host mounts (views, cache and
//! secret mounts, rootfs probes) stay in the mount table and step directories stay on disk. At
//! start they are unmounted and removed; the staged emulators stay.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Entries of the root that outlive a step on purpose.
const KEPT: &[&str] = &["emulators"];

/// Unmounts everything mounted below `root` and removes what steps left there. Returns how many
/// mounts there were.
pub fn clear_mount_source_root(root: &Path) -> usize {
    let mounts = mounts_below(root, &read_mountinfo());
    for mount in &mounts {
        if let Err(errno) = umount2(mount, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %mount.display(), %errno, "could not unmount a leftover mount");
        }
    }
    if !mounts_below(root, &read_mountinfo()).is_empty() {
        tracing::warn!(root = %root.display(), "mounts remain; leftover step files are kept");
        return mounts.len();
    }
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if KEPT.iter().any(|kept| name == *kept) {
            continue;
        }
        let path = entry.path();
        let removed = match entry.file_type().map(|t| t.is_dir()) {
            Ok(true) => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if let Err(error) = removed {
            tracing::warn!(path = %path.display(), %error, "could not remove a leftover");
        }
    }
    mounts.len()
}

fn read_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// The mount points strictly below `root` in `mountinfo`, deepest first.
fn mounts_below(root: &Path, mountinfo: &str) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(root) && point != root)
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts.dedup();
    mounts
}

/// mountinfo writes space, tab, newline and backslash as three octal digits (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 0:45 / /r/local-mnt-src/views/v1 ro - overlay overlay ro,lowerdir=/x
91 22 0:46 / /r/local-mnt-src/views/v1/sub rw - tmpfs tmpfs rw
92 22 0:47 / /r/local-mnt-src/a\\040b rw - tmpfs tmpfs rw
93 22 0:48 / /r/local-mnt-src rw - tmpfs tmpfs rw
94 22 0:49 / /r/local-mnt-srcx/v rw - tmpfs tmpfs rw
";

    #[test]
    fn mounts_below_the_root_come_deepest_first() {
        let mounts = mounts_below(Path::new("/r/local-mnt-src"), MOUNTINFO);
        let shown: Vec<String> = mounts.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            shown,
            [
                "/r/local-mnt-src/views/v1/sub",
                "/r/local-mnt-src/views/v1",
                "/r/local-mnt-src/a b",
            ]
        );
    }

    #[test]
    fn leftover_files_go_and_emulators_stay() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("nodekit-1234/rootfs")).unwrap();
        std::fs::create_dir_all(root.path().join("emulators")).unwrap();
        std::fs::write(root.path().join("emulators/qemu-aarch64-static"), b"q").unwrap();
        std::fs::write(root.path().join(".layer-1"), b"partial").unwrap();
        assert_eq!(clear_mount_source_root(root.path()), 0);
        let left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["emulators"]);
    }
}
