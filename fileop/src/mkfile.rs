//! The mkfile action.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nodekit_proto::pb::FileActionMkFile;

use crate::error::FileOpError;
use crate::meta::{chmod, lchown, set_time, timestamp};
use crate::resolve::{at, clean_abs, resolve_str};
use crate::users::{resolve_owner, UserResolver};

/// Writes `op.data` to `op.path` inside `root`, like BuildKit's FileOp mkfile (`os.WriteFile`).
///
/// A symlink at `path` is followed inside `root`. A new file gets `mode & 0o777` exactly; an
/// existing file is truncated and rewritten and keeps its mode. Owner and timestamp are applied
/// in both cases. Failures read `open <p>: <reason>` (`is a directory`, `no such file or
/// directory` for a missing parent, ...).
pub fn mkfile(
    root: &Path,
    op: &FileActionMkFile,
    users: &dyn UserResolver,
) -> Result<(), FileOpError> {
    let owner = resolve_owner(users, op.owner.as_ref())?;
    let ts = timestamp(op.timestamp);
    let mode = (op.mode as u32) & 0o777;
    let host = resolve_str(root, &clean_abs(&op.path), true)?;

    let (mut file, created) = open_for_write(&host, mode).map_err(at("open", root, &host))?;
    file.write_all(&op.data).map_err(at("write", root, &host))?;
    drop(file);
    if created {
        chmod(&host, mode).map_err(at("chmod", root, &host))?;
    }
    if let Some(owner) = owner {
        lchown(&host, owner).map_err(at("lchown", root, &host))?;
    }
    set_time(&host, ts.as_ref()).map_err(at("utimes", root, &host))?;
    Ok(())
}

/// Opens `host` for writing, creating it with `mode` or truncating an existing file. Returns
/// whether it was created. Never follows a symlink (the resolver already did).
fn open_for_write(host: &Path, mode: u32) -> io::Result<(fs::File, bool)> {
    let flags = (OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits();
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(flags)
        .open(host);
    match created {
        Ok(f) => Ok((f, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .custom_flags(flags)
                .open(host)?;
            Ok((f, false))
        }
        Err(e) => Err(e),
    }
}
