//! The copy action.

mod entry;
mod mode;
mod options;
mod target;
mod unpack;
mod untar;
mod walk;
pub(crate) mod wildcard;
mod xattr;

use std::fs;
use std::path::Path;

use nodekit_proto::pb::FileActionCopy;

use crate::error::FileOpError;
use crate::resolve::{clean_abs, clean_keep_trailing, resolve_str, shown};
use crate::users::UserResolver;
use crate::Limits;
use options::Options;
use target::{copy_source, Source};
use wildcard::resolve_wildcards;

/// Copies `op.src` of `src_root` to `op.dest` of `dest_root`, like BuildKit's FileOp copy.
///
/// Both paths are resolved inside their roots (symlinks never lead out of a root). Semantics
/// follow BuildKit and fsutil: see the crate documentation for the destination rules, owners,
/// modes, timestamps, patterns and wildcards.
pub fn copy(
    src_root: &Path,
    dest_root: &Path,
    op: &FileActionCopy,
    users: &dyn UserResolver,
) -> Result<(), FileOpError> {
    copy_limited(src_root, dest_root, op, users, &Limits::default())
}

/// As [`copy`], an archive's extraction bounded by `limits`.
pub fn copy_limited(
    src_root: &Path,
    dest_root: &Path,
    op: &FileActionCopy,
    users: &dyn UserResolver,
    limits: &Limits,
) -> Result<(), FileOpError> {
    let opts = Options::from_action(op, users)?;
    let src_path = clean_keep_trailing(&op.src);
    let dest_path = clean_keep_trailing(&op.dest);
    if !op.create_dest_path {
        check_dest_parent(dest_root, &op.dest)?;
    }
    let sources = if op.allow_wildcard {
        resolve_wildcards(src_root, &src_path, op.follow_symlink)?
    } else {
        vec![src_path.clone()]
    };
    if sources.is_empty() {
        if op.allow_empty_wildcard {
            return Ok(());
        }
        return Err(FileOpError::NoMatch { pattern: src_path });
    }
    for s in &sources {
        if op.attempt_unpack_docker_compatibility
            && unpack::unpack(&opts, limits, src_root, s, dest_root, &dest_path)?
        {
            continue;
        }
        let src = Source {
            root: src_root,
            path: s,
            follow: op.follow_symlink,
            contents: op.dir_copy_contents,
        };
        copy_source(&opts, &src, dest_root, &dest_path)?;
    }
    Ok(())
}

/// Without createDestPath the directory that holds the destination must exist.
fn check_dest_parent(dest_root: &Path, dest: &str) -> Result<(), FileOpError> {
    let host = resolve_str(dest_root, &clean_abs(dest), true)?;
    let Some(parent) = host.parent().filter(|p| p.starts_with(dest_root)) else {
        return Ok(());
    };
    fs::symlink_metadata(parent)
        .map(drop)
        .map_err(|e| FileOpError::os("lstat", shown(dest_root, parent), e))
        .map_err(|e| e.context(format!("failed to stat {dest}")))
}
