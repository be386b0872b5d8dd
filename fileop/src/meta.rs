//! Ownership, permission and timestamp helpers that never follow a symlink in the last position,
//! and a root-confined `mkdir -p`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use nix::errno::Errno;

use crate::error::{errno, FileOpError};
use crate::resolve::shown;

/// A resolved owner: `(uid, gid)`.
pub(crate) type Owner = (u32, u32);

/// Converts an action timestamp (Unix nanoseconds, -1 = unset) to a [`TimeSpec`].
pub(crate) fn timestamp(ns: i64) -> Option<TimeSpec> {
    if ns == -1 {
        return None;
    }
    Some(TimeSpec::new(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000),
    ))
}

/// `lchown`.
pub(crate) fn lchown(path: &Path, owner: Owner) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1))
}

/// Sets atime and mtime without following a symlink.
pub(crate) fn set_times(path: &Path, atime: &TimeSpec, mtime: &TimeSpec) -> io::Result<()> {
    utimensat(
        AT_FDCWD,
        path,
        atime,
        mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Sets both atime and mtime to `ts`, when set.
pub(crate) fn set_time(path: &Path, ts: Option<&TimeSpec>) -> io::Result<()> {
    match ts {
        Some(ts) => set_times(path, ts, ts),
        None => Ok(()),
    }
}

/// `chmod` with all 12 permission bits. Only ever called on paths known not to be symlinks.
pub(crate) fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
}

/// Creates every missing directory from `root` down to `target` (a host path below `root` as
/// returned by the resolver) with `mode`, and gives each new one `owner` and `ts` (fsutil's
/// `MkdirAll`). Existing components must be directories; a symlink is never followed
/// (`ENOTDIR`). Returns the directories it created, outermost first. Errors name paths inside
/// `root`.
pub(crate) fn mkdir_all(
    root: &Path,
    target: &Path,
    mode: u32,
    owner: Option<Owner>,
    ts: Option<&TimeSpec>,
) -> Result<Vec<PathBuf>, FileOpError> {
    let Ok(rel) = target.strip_prefix(root) else {
        // The parent of the root itself (copying onto "/"): it exists, nothing to do.
        return Ok(Vec::new());
    };
    let mut created = Vec::new();
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        cur.push(name);
        if mkdir_one(&cur, mode).map_err(|e| FileOpError::os("mkdir", shown(root, &cur), e))? {
            finish_new_dir(root, &cur, mode, owner, ts)?;
            created.push(cur.clone());
        }
    }
    Ok(created)
}

/// Creates `dir` unless it exists as a directory; `Ok(true)` when it was created.
fn mkdir_one(dir: &Path, mode: u32) -> io::Result<bool> {
    match fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => return Ok(false),
        Ok(_) => return Err(errno(Errno::ENOTDIR)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match fs::DirBuilder::new().mode(mode & 0o777).create(dir) {
        Ok(()) => Ok(true),
        Err(_) if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives a directory made by [`mkdir_all`] its exact mode, owner and time.
fn finish_new_dir(
    root: &Path,
    dir: &Path,
    mode: u32,
    owner: Option<Owner>,
    ts: Option<&TimeSpec>,
) -> Result<(), FileOpError> {
    let shown_dir = || shown(root, dir);
    chmod(dir, mode & 0o777).map_err(|e| FileOpError::os("chmod", shown_dir(), e))?;
    if let Some(owner) = owner {
        lchown(dir, owner).map_err(|e| FileOpError::os("lchown", shown_dir(), e))?;
    }
    set_time(dir, ts).map_err(|e| FileOpError::os("utimes", shown_dir(), e))
}

/// Re-applies `ts` to directories created earlier, whose mtime changed when entries were added.
pub(crate) fn fix_created_dirs(
    root: &Path,
    dirs: &[PathBuf],
    ts: Option<&TimeSpec>,
) -> Result<(), FileOpError> {
    if ts.is_none() {
        return Ok(());
    }
    for d in dirs.iter().rev() {
        set_time(d, ts).map_err(|e| FileOpError::os("utimes", shown(root, d), e))?;
    }
    Ok(())
}

/// Removes whatever is at `path` (a directory recursively) without following symlinks.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
