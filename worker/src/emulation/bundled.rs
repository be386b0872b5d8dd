//! The bundled-qemu path: the emulator is copied under local-mount-source-root (once, then
//! hard-linked into each step's directory), bind-mounted read-only into the container and put
//! in front of the command, as BuildKit does with its own qemu.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Where the emulator appears inside the container (BuildKit's path).
pub const QEMU_MOUNT: &str = "/dev/.buildkit_qemu_emulator";

const MAX_SYMLINKS: usize = 40;

/// Copies `qemu` into `<mount_root>/emulators` unless an up-to-date copy is there, then links
/// it into `step_dir` (removed with the step). Returns the step's copy.
pub fn stage_emulator(mount_root: &Path, step_dir: &Path, qemu: &Path) -> io::Result<PathBuf> {
    let shared_dir = mount_root.join("emulators");
    std::fs::create_dir_all(&shared_dir)?;
    let name = qemu
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "emulator has no file name"))?;
    let shared = shared_dir.join(name);
    if !is_current_copy(qemu, &shared) {
        // Concurrent steps may stage at once: each writes its own file and renames it in place.
        let partial = shared_dir.join(format!(
            ".{}-{}",
            crate::random_suffix(),
            name.to_string_lossy()
        ));
        std::fs::copy(qemu, &partial)?;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o555))?;
        std::fs::rename(&partial, &shared)?;
    }
    let step_copy = step_dir.join("qemu");
    if std::fs::hard_link(&shared, &step_copy).is_err() {
        std::fs::copy(&shared, &step_copy)?;
    }
    Ok(step_copy)
}

/// Whether `copy` has `source`'s size and was made after `source` last changed.
fn is_current_copy(source: &Path, copy: &Path) -> bool {
    match (std::fs::metadata(source), std::fs::metadata(copy)) {
        (Ok(source), Ok(copy)) => source.len() == copy.len() && copy.mtime() >= source.mtime(),
        _ => false,
    }
}

/// The command line running `args` under the emulator: qemu does not search PATH, so the
/// program is given resolved, and `-0` keeps the argv[0] the step asked for.
pub fn prefix_command(args: &[String], program: &str) -> Vec<String> {
    let Some(argv0) = args.first() else {
        return Vec::new();
    };
    [QEMU_MOUNT, "-0", argv0, program]
        .into_iter()
        .map(String::from)
        .chain(args[1..].iter().cloned())
        .collect()
}

/// Resolves `name` as execvp would inside the container: as is when it has a slash, else the
/// first directory of the step's PATH holding it, looked up in `rootfs`.
pub fn resolve_program(rootfs: &Path, name: &str, env: &[String]) -> Option<String> {
    if name.contains('/') {
        return Some(name.to_string());
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::exec::DEFAULT_PATH.trim_start_matches("PATH="));
    path.split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
        .find(|candidate| is_file_in_root(rootfs, candidate))
}

/// Whether `path` names a regular file in the tree at `root`, symlinks resolved inside it.
fn is_file_in_root(root: &Path, path: &str) -> bool {
    resolve_in_root(root, Path::new(path)).is_some_and(|p| p.is_file())
}

/// `path` (absolute, as the container sees it) resolved to a host path below `root`.
fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    let mut resolved = PathBuf::new(); // relative to root
    let mut hops = 0;
    while let Some(next) = pending.pop() {
        let mut components = next.components().peekable();
        if next.is_absolute() {
            resolved = PathBuf::new();
        }
        while let Some(component) = components.next() {
            match component {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(part) => {
                    let candidate = resolved.join(part);
                    let host = root.join(&candidate);
                    match std::fs::symlink_metadata(&host) {
                        Ok(meta) if meta.file_type().is_symlink() => {
                            hops += 1;
                            if hops > MAX_SYMLINKS {
                                return None;
                            }
                            let rest: PathBuf = components.collect();
                            pending.push(rest);
                            pending.push(std::fs::read_link(&host).ok()?);
                            break;
                        }
                        Ok(_) => resolved = candidate,
                        Err(_) => return None,
                    }
                }
            }
        }
    }
    Some(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn commands_keep_their_argv0() {
        let args = ["sh", "-c", "uname -m"].map(String::from);
        assert_eq!(
            prefix_command(&args, "/bin/sh"),
            [QEMU_MOUNT, "-0", "sh", "/bin/sh", "-c", "uname -m"]
        );
        assert!(prefix_command(&[], "/bin/sh").is_empty());
    }

    #[test]
    fn programs_are_found_on_the_path_inside_the_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/bin/busybox"), b"x").unwrap();
        // Merged /usr with an absolute link, as Debian images have: must stay inside the root.
        symlink("/usr/bin", r.join("bin")).unwrap();
        symlink("busybox", r.join("usr/bin/echo")).unwrap();
        symlink("../../../../../usr/bin/busybox", r.join("usr/bin/sh")).unwrap();
        let env = ["PATH=/nowhere:/bin".to_string()];
        assert_eq!(
            resolve_program(r, "echo", &env).as_deref(),
            Some("/bin/echo")
        );
        assert_eq!(resolve_program(r, "sh", &env).as_deref(), Some("/bin/sh"));
        assert_eq!(resolve_program(r, "missing", &env), None);
        assert_eq!(resolve_program(r, "./x", &env).as_deref(), Some("./x"));
        // The default PATH applies when the step has none.
        assert_eq!(
            resolve_program(r, "echo", &[]).as_deref(),
            Some("/usr/bin/echo")
        );
    }

    #[test]
    fn symlink_loops_end() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(!is_file_in_root(root.path(), "/a"));
    }

    #[test]
    fn the_emulator_is_copied_once_and_linked_per_step() {
        let dir = tempfile::tempdir().unwrap();
        let qemu = dir.path().join("qemu-aarch64-static");
        std::fs::write(&qemu, b"emulator").unwrap();
        let mount_root = dir.path().join("mnt");
        let step = mount_root.join("step1");
        std::fs::create_dir_all(&step).unwrap();
        let staged = stage_emulator(&mount_root, &step, &qemu).unwrap();
        assert!(staged.starts_with(&step));
        assert_eq!(std::fs::read(&staged).unwrap(), b"emulator");
        let shared = mount_root.join("emulators/qemu-aarch64-static");
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o555);
        assert_eq!(std::fs::metadata(&shared).unwrap().nlink(), 2);
    }
}
