//! runc creates missing mount points (/etc/hosts, /proc, ...) in the rootfs; left there they
//! would end up in the step's layer. Like BuildKit, nodekit notes which were missing before the
//! step and removes them afterwards if they are still empty.

use std::path::{Component, Path, PathBuf};

/// The container paths among `destinations` (and their missing parents) absent from `rootfs`,
/// deepest first. A symlink on the way stops the walk: it is the image's, not a stub.
pub fn missing_mount_points(rootfs: &Path, destinations: &[String]) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    for destination in destinations {
        let mut relative = PathBuf::new();
        for component in Path::new(destination).components() {
            let Component::Normal(name) = component else {
                continue;
            };
            relative.push(name);
            match std::fs::symlink_metadata(rootfs.join(&relative)) {
                Ok(meta) if meta.file_type().is_symlink() => break,
                Ok(_) => continue,
                Err(_) => {
                    if !missing.contains(&relative) {
                        missing.push(relative.clone());
                    }
                }
            }
        }
    }
    missing.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    missing
}

/// Removes the stubs that are still empty files or empty directories.
pub fn remove_stubs(rootfs: &Path, stubs: &[PathBuf]) {
    for stub in stubs {
        let path = rootfs.join(stub);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let removed = if meta.is_dir() {
            std::fs::remove_dir(&path) // fails, as wanted, when not empty
        } else if meta.is_file() && meta.len() == 0 {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        if let Err(error) = removed {
            tracing::debug!(path = %path.display(), %error, "mount stub kept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_removes_only_empty_new_mount_points() {
        let root = std::env::temp_dir().join(format!("nodekit-stubs-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "x").unwrap();
        let destinations =
            ["/etc/hosts", "/proc", "/run/secrets/a", "/etc/passwd"].map(String::from);
        let missing = missing_mount_points(&root, &destinations);
        assert_eq!(missing[0], PathBuf::from("run/secrets/a"));
        assert!(missing.contains(&PathBuf::from("etc/hosts")));
        assert!(!missing.contains(&PathBuf::from("etc/passwd")));
        // What runc would create, plus a file the step wrote into a stub directory.
        std::fs::create_dir_all(root.join("run/secrets")).unwrap();
        std::fs::write(root.join("run/secrets/a"), "").unwrap();
        std::fs::write(root.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(root.join("proc/kept"), "data").unwrap();
        remove_stubs(&root, &missing);
        assert!(!root.join("run").exists());
        assert!(!root.join("etc/hosts").exists());
        assert!(root.join("proc/kept").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
