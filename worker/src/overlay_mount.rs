//! Overlay mounts of many layers. mount(2) reads at most one page of filesystem options, so
//! the absolute paths of some 40 lower directories already overflow it (the kernel truncates
//! the list, and the mount fails with ENOENT on a cut path). As containerd does, a long list is
//! given relative to the directories' common parent, from a thread whose working directory is
//! that parent: the thread unshares its filesystem attributes first, so the daemon's other
//! threads keep theirs.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::error::{WorkerError, WorkerResult};

/// The most option bytes mount(2) reads: one page, with its terminating NUL.
pub const MOUNT_DATA_MAX: usize = 4095;

/// overlayfs' own bound on lower directories (the kernel's OVL_MAX_STACK).
const OVERLAY_MAX_LAYERS: usize = 500;

/// The options of an overlay mount whose `data` is longer than mount(2) reads, rewritten
/// relative to the directories' common parent: (parent, options).
pub fn compact(data: &str) -> WorkerResult<(PathBuf, String)> {
    let options: Vec<(&str, Option<&str>)> = data
        .split(',')
        .map(|option| match option.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (option, None),
        })
        .collect();
    let layers = options
        .iter()
        .filter(|(key, _)| *key == "lowerdir")
        .filter_map(|(_, value)| *value)
        .map(|dirs| dirs.split(':').count())
        .sum::<usize>();
    let too_many = || too_many_layers(layers);
    if layers > OVERLAY_MAX_LAYERS {
        return Err(too_many());
    }
    let dirs = options.iter().filter(|(key, _)| is_dir_option(key));
    let paths = dirs.flat_map(|(_, value)| value.unwrap_or_default().split(':'));
    let parent = common_parent(paths.map(Path::new)).ok_or_else(too_many)?;
    let relative = |path: &str| {
        let path = Path::new(path)
            .strip_prefix(&parent)
            .unwrap_or(Path::new(path));
        path.to_string_lossy().into_owned()
    };
    let rewritten: Vec<String> = options
        .iter()
        .map(|(key, value)| match value {
            Some(value) if is_dir_option(key) => {
                let dirs: Vec<String> = value.split(':').map(relative).collect();
                format!("{key}={}", dirs.join(":"))
            }
            Some(value) => format!("{key}={value}"),
            None => key.to_string(),
        })
        .collect();
    let data = rewritten.join(",");
    if data.len() > MOUNT_DATA_MAX {
        return Err(too_many());
    }
    Ok((parent, data))
}

fn is_dir_option(key: &str) -> bool {
    matches!(key, "lowerdir" | "upperdir" | "workdir")
}

fn too_many_layers(layers: usize) -> WorkerError {
    WorkerError::io(
        format!("mounting a snapshot of {layers} layers"),
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "an overlay mount stacks at most {OVERLAY_MAX_LAYERS} layers, and their \
                 directories' names must fit in {MOUNT_DATA_MAX} bytes: a chain of this many \
                 filesystem-changing steps cannot be mounted (BuildKit has the same bound)"
            ),
        ),
    )
}

/// The deepest directory all `paths` (absolute) are under, if it is not `/`.
fn common_parent<'a>(paths: impl Iterator<Item = &'a Path>) -> Option<PathBuf> {
    let mut common: Option<PathBuf> = None;
    for path in paths {
        let parent = path.parent()?;
        common = Some(match common {
            None => parent.to_path_buf(),
            Some(common) => common
                .components()
                .zip(parent.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common.filter(|c| c.is_absolute() && c.parent().is_some())
}

/// Mounts overlay `data` (relative to `parent`) at `target` (absolute), from a thread of its
/// own working directory.
pub fn mount_in(parent: &Path, target: &Path, flags: MsFlags, data: &str) -> nix::Result<()> {
    std::thread::scope(|scope| {
        let mounting = scope.spawn(|| {
            unshare(CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(parent)?;
            mount(Some("overlay"), target, Some("overlay"), flags, Some(data))
        });
        mounting.join().unwrap_or(Err(nix::errno::Errno::EINTR))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_is_given_relative_to_the_common_parent() {
        let lower: Vec<String> = (1..=200)
            .rev()
            .map(|i| {
                format!(
                    "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/{i}/fs"
                )
            })
            .collect();
        let data = format!(
            "index=off,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/201/work,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/201/fs,lowerdir={}",
            lower.join(":")
        );
        assert!(data.len() > MOUNT_DATA_MAX);
        let (parent, compacted) = compact(&data).unwrap();
        assert_eq!(
            parent,
            Path::new("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots")
        );
        assert!(compacted
            .starts_with("index=off,workdir=201/work,upperdir=201/fs,lowerdir=200/fs:199/fs:"));
        assert!(compacted.ends_with(":2/fs:1/fs"));
    }

    #[test]
    fn more_layers_than_overlay_stacks_are_refused_naming_the_bound() {
        let lower: Vec<String> = (1..=501).map(|i| format!("/s/{i}/fs")).collect();
        let error = compact(&format!("lowerdir={}", lower.join(":")))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("501 layers") && error.contains("at most 500"),
            "{error}"
        );
        let scattered = format!(
            "lowerdir={}",
            (0..300)
                .map(|i| format!("/{i:0>20}/fs"))
                .collect::<Vec<_>>()
                .join(":")
        );
        assert!(compact(&scattered).is_err(), "no common parent below /");
    }
}
