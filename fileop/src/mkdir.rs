//! The mkdir action.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nodekit_proto::pb::FileActionMkDir;

use crate::error::FileOpError;
use crate::meta::{chmod, lchown, mkdir_all, set_time, timestamp};
use crate::resolve::{at, clean_abs, resolve_str};
use crate::users::{resolve_owner, UserResolver};

/// Creates directory `op.path` inside `root`, like BuildKit's FileOp mkdir.
///
/// - The path is resolved inside `root`, symlinks (the last component included) followed.
/// - `mode & 0o777` is applied exactly, whatever the umask.
/// - With `makeParents` every missing directory gets that mode, the owner and the timestamp;
///   an existing directory is fine, an existing non-directory is `mkdir <p>: not a directory`.
/// - Without it a missing parent is `mkdir <p>: no such file or directory`, and an existing
///   entry of any kind at `path` is left untouched without error.
pub fn mkdir(
    root: &Path,
    op: &FileActionMkDir,
    users: &dyn UserResolver,
) -> Result<(), FileOpError> {
    let owner = resolve_owner(users, op.owner.as_ref())?;
    let ts = timestamp(op.timestamp);
    let mode = (op.mode as u32) & 0o777;
    let host = resolve_str(root, &clean_abs(&op.path), true)?;
    if op.make_parents {
        mkdir_all(root, &host, mode, owner, ts.as_ref())?;
        return Ok(());
    }
    if host == root {
        return Ok(());
    }
    match fs::DirBuilder::new().mode(mode).create(&host) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(at("mkdir", root, &host)(e)),
    }
    chmod(&host, mode).map_err(at("chmod", root, &host))?;
    if let Some(owner) = owner {
        lchown(&host, owner).map_err(at("lchown", root, &host))?;
    }
    set_time(&host, ts.as_ref()).map_err(at("utimes", root, &host))?;
    Ok(())
}
