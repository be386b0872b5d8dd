//! The symlink action.

use std::path::Path;

use nodekit_proto::pb::FileActionSymlink;

use crate::error::FileOpError;
use crate::meta::{lchown, set_time, timestamp};
use crate::resolve::{at, clean_abs, resolve_str, shown};
use crate::users::{resolve_owner, UserResolver};

/// Creates symlink `op.newpath` (inside `root`) pointing to `op.oldpath`, like BuildKit's FileOp
/// symlink. The target is stored verbatim, never resolved or checked. `newpath` is resolved
/// completely inside `root` (an existing link there is followed, as upstream), and creation
/// fails with `symlink <old> <new>: file exists` when anything is in the way. Owner and
/// timestamp are set on the link itself.
pub fn symlink(
    root: &Path,
    op: &FileActionSymlink,
    users: &dyn UserResolver,
) -> Result<(), FileOpError> {
    let owner = resolve_owner(users, op.owner.as_ref())?;
    let ts = timestamp(op.timestamp);
    let host = resolve_str(root, &clean_abs(&op.newpath), true)?;

    std::os::unix::fs::symlink(&op.oldpath, &host).map_err(|e| FileOpError::Link {
        op: "symlink",
        old: op.oldpath.clone(),
        new: shown(root, &host),
        error: e,
    })?;
    if let Some(owner) = owner {
        lchown(&host, owner).map_err(at("lchown", root, &host))?;
    }
    set_time(&host, ts.as_ref()).map_err(at("utimes", root, &host))?;
    Ok(())
}
