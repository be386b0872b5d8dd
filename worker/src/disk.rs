//! A full disk, said plainly: when a step fails while the filesystem under its snapshot has
//! (almost) no space left, the step's error names that filesystem, so the person reading
//! "exit code: 1" learns that the node's disk is full rather than their command broken.

use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Below this many free bytes the filesystem counts as full (a step's last write failed on it).
const FULL_BELOW_BYTES: u64 = 4 << 20;

/// A note for the error of a failed step whose changes live in `dir`, when its filesystem is
/// full: which filesystem (its mount point), what it holds, how much is free.
pub fn full_disk_note(dir: &Path) -> Option<String> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let available = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    if available >= FULL_BELOW_BYTES {
        return None;
    }
    let disk = mount_point_of(dir).unwrap_or_else(|| dir.to_path_buf());
    Some(format!(
        "no space left on device: the filesystem at {} (holding containerd's snapshots) has {} free",
        disk.display(),
        human_bytes(available)
    ))
}

/// The mount point of the filesystem holding `path`: the longest mount point above it.
fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_point)
        .filter(|point| path.starts_with(point))
        .max_by_key(|point| point.as_os_str().len())
}

/// mountinfo writes space, tab, newline and backslash in a mount point as `\NNN` (octal).
fn unescape_mount_point(field: &str) -> PathBuf {
    let mut bytes = Vec::with_capacity(field.len());
    let raw = field.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let octal = raw.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (raw[i], octal) {
            (b'\\', Some(byte)) => {
                bytes.push(byte);
                i += 4;
            }
            (byte, _) => {
                bytes.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1048576 => format!("{} KiB", bytes >> 10),
        _ => format!("{} MiB", bytes >> 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(
            unescape_mount_point(r"/var/tmp/a\040b\134c"),
            PathBuf::from(r"/var/tmp/a b\c")
        );
        assert_eq!(unescape_mount_point("/"), PathBuf::from("/"));
    }

    #[test]
    fn a_path_belongs_to_its_nearest_mount_point() {
        let point = mount_point_of(Path::new("/proc/self")).unwrap();
        assert_eq!(point, PathBuf::from("/proc"));
    }

    #[test]
    fn sizes_read_as_people_count() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(3 << 10), "3 KiB");
        assert_eq!(human_bytes(5 << 20), "5 MiB");
    }
}
