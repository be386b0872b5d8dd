//! Root-confined path resolution.
//!
//! Every path of an action is interpreted inside a root directory the way a process chrooted into
//! that root would see it: `..` stops at the root, an absolute symlink target starts again at the
//! root, a relative one continues from the link's directory. Resolution walks the path one
//! component at a time with `lstat`/`readlink` and never hands a path containing a symlink to
//! the kernel, except for the last component when the caller asked not to follow it.
//!
//! The result is a host path `root/<real dirs...>/<rest>` whose existing components are real
//! directories; components that do not exist yet are appended as they are (they cannot be
//! symlinks). Callers then operate on the last component without following it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{errno, FileOpError};

/// Longest chain of symlinks followed during one resolution (same limit as containerd's
/// continuity `RootPath`).
const MAX_SYMLINKS: usize = 255;

/// Lexically cleans a slash-separated path like Go's `path.Clean`: no empty, `.` or inner `..`
/// components; a rooted path never climbs above `/`; an empty result is `.` (or `/`).
pub(crate) fn clean(p: &str) -> String {
    nodekit_patterns::clean_path(p)
}

/// `filepath.Join("/", p)`: the absolute, cleaned form of an action path.
pub(crate) fn clean_abs(p: &str) -> String {
    clean(&format!("/{p}"))
}

/// Upstream's `cleanPath` for copy sources and destinations: like [`clean_abs`] but keeps a
/// trailing `/` or `/.`, which change how a copy treats its destination.
pub(crate) fn clean_keep_trailing(s: &str) -> String {
    let mut s2 = clean_abs(s);
    if s.ends_with("/.") {
        if s2 != "/" {
            s2.push('/');
        }
        s2.push('.');
    } else if s.ends_with('/') && s2 != "/" {
        s2.push('/');
    }
    s2
}

/// Splits a cleaned absolute path into its parent and last component (`"/a/b"` -> `("/a", "b")`,
/// `"/a"` -> `("/", "a")`, `"/"` -> `("/", "")`).
pub(crate) fn split_last(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(0) => ("/", &p[1..]),
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

/// The path of `host` as seen inside `root` (for messages): `/` + the part below root.
pub(crate) fn shown(root: &Path, host: &Path) -> String {
    match host.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "/".to_string(),
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => host.to_string_lossy().into_owned(),
    }
}

/// Maps an `io::Error` of system call `op` on `host` to a [`FileOpError`] naming the path
/// inside `root`.
pub(crate) fn at<'a>(
    op: &'static str,
    root: &'a Path,
    host: &'a Path,
) -> impl FnOnce(io::Error) -> FileOpError + 'a {
    move |e| FileOpError::os(op, shown(root, host), e)
}

fn push_components(pending: &mut Vec<OsString>, path: &[OsString]) {
    // `pending` is a stack: the next component to resolve is at the end.
    pending.extend(path.iter().rev().cloned());
}

/// Lexically applies the components of `path` to `base` (Go's `filepath.Join` + `Clean`):
/// `.` and empty components vanish, `..` drops the previous component and stops at the root.
fn join_lexically(mut base: Vec<OsString>, path: &OsStr) -> Vec<OsString> {
    for comp in path.as_bytes().split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                base.pop();
            }
            c => base.push(OsString::from_vec(c.to_vec())),
        }
    }
    base
}

/// Resolves `path` inside `root` (see the module docs). `follow_final` decides whether a symlink
/// in the last position is followed too.
///
/// This is containerd's `fs.RootPath`: the path is cleaned lexically first; a symlink's target is
/// joined lexically to the (already resolved) directory holding the link, or to the root when
/// absolute, and the result is walked again.
///
/// Errors: `ENOTDIR` when an existing non-directory is used as a directory, `ELOOP` after
/// [`MAX_SYMLINKS`] links, or the `lstat`/`readlink` error. A missing component is not an error.
pub(crate) fn resolve(
    root: &Path,
    path: &OsStr,
    follow_final: bool,
) -> Result<PathBuf, FileOpError> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &join_lexically(Vec::new(), path));
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    // Once a component is missing, nothing below it can exist: skip the lstat calls.
    let mut missing = false;

    while let Some(comp) = pending.pop() {
        if missing {
            resolved.push(comp);
            continue;
        }
        let is_last = pending.is_empty();
        let mut host = root.to_path_buf();
        host.extend(&resolved);
        host.push(&comp);
        match fs::symlink_metadata(&host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                resolved.push(comp);
            }
            Err(e) => return Err(FileOpError::os("lstat", shown(root, &host), e)),
            Ok(md) if md.file_type().is_symlink() && (!is_last || follow_final) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    let whole = String::from_utf8_lossy(path.as_bytes()).into_owned();
                    return Err(FileOpError::os(
                        "lstat",
                        clean_abs(&whole),
                        errno(Errno::ELOOP),
                    ));
                }
                let target = fs::read_link(&host)
                    .map_err(|e| FileOpError::os("readlink", shown(root, &host), e))?;
                let base = if target.as_os_str().as_bytes().starts_with(b"/") {
                    Vec::new()
                } else {
                    std::mem::take(&mut resolved)
                };
                resolved.clear();
                push_components(&mut pending, &join_lexically(base, target.as_os_str()));
            }
            Ok(md) => {
                if let (Some(next), false) = (pending.last(), md.is_dir()) {
                    let child = shown(root, &host.join(next));
                    return Err(FileOpError::os("lstat", child, errno(Errno::ENOTDIR)));
                }
                resolved.push(comp);
            }
        }
    }

    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// [`resolve`] for a `&str` path.
pub(crate) fn resolve_str(
    root: &Path,
    path: &str,
    follow_final: bool,
) -> Result<PathBuf, FileOpError> {
    resolve(root, OsStr::new(path), follow_final)
}

/// Resolves `path` inside `root` the way every action of this crate does and returns the host
/// path. `..` never climbs above `root` and symlinks (absolute or relative) are followed as if
/// `root` were `/`; the last component is followed only when `follow_final` is set. Components
/// that do not exist are appended unchanged.
///
/// Useful to callers that need to read a file of a mounted snapshot safely.
pub fn resolve_in_root(
    root: &Path,
    path: &str,
    follow_final: bool,
) -> Result<PathBuf, crate::FileOpError> {
    resolve_str(root, path, follow_final)
}

/// Go's `filepath.Base` for a slash path: the last element, trailing slashes ignored; `"/"` for
/// a path of only slashes, `"."` for an empty one.
pub(crate) fn base_name(p: &str) -> &str {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return if p.is_empty() { "." } else { "/" };
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
