//! The rm action.

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nodekit_proto::pb::FileActionRm;

use crate::copy::wildcard::resolve_wildcards;
use crate::error::FileOpError;
use crate::meta::remove_all;
use crate::resolve::{clean_abs, clean_keep_trailing, resolve_str, shown, split_last};

/// Removes `op.path` inside `root` (recursively for a directory), like BuildKit's FileOp rm.
///
/// Parent directories are resolved inside `root` following symlinks; the last component is
/// never followed, so removing a symlink removes the link, not its target. Without
/// `allowNotFound` a missing path is `stat <p>: no such file or directory`. With
/// `allowWildcard`, glob characters select every match; no match is not an error, but a missing
/// directory above the first wildcard is.
pub fn rm(root: &Path, op: &FileActionRm) -> Result<(), FileOpError> {
    if op.allow_wildcard {
        let src = clean_keep_trailing(&op.path);
        for m in resolve_wildcards(root, &src, false)? {
            rm_path(root, &m, op.allow_not_found)?;
        }
        return Ok(());
    }
    rm_path(root, &op.path, op.allow_not_found)
}

fn rm_path(root: &Path, path: &str, allow_not_found: bool) -> Result<(), FileOpError> {
    let path = clean_abs(path);
    let (dir, base) = split_last(&path);
    if base.is_empty() {
        return Err(FileOpError::Invalid(
            "rmPath: invalid empty path".to_string(),
        ));
    }
    let absent = |e: &FileOpError| matches!(e.errno(), Some(Errno::ENOENT | Errno::ENOTDIR));
    let target = match resolve_str(root, dir, true) {
        Ok(d) => d.join(base),
        Err(e) if allow_not_found && absent(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !allow_not_found {
        // Upstream checks with a stat that follows a final symlink: resolve it inside the root.
        let followed = resolve_str(root, &path, true)?;
        if let Err(e) = fs::symlink_metadata(&followed) {
            return Err(FileOpError::os("stat", shown(root, &target), e));
        }
    }
    remove_all(&target).map_err(|e| FileOpError::os("unlinkat", shown(root, &target), e))
}
