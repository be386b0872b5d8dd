//! One source of a copy (fsutil's `Copy` for a single source): the destination directory,
//! "copy into a directory" versus "copy to a name", then the recursive copy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::options::Options;
use super::walk::Copier;
use crate::error::FileOpError;
use crate::meta::{fix_created_dirs, mkdir_all};
use crate::resolve::{base_name, clean, resolve_str, shown, split_last};

/// Where one source goes and how it is read.
pub(crate) struct Source<'a> {
    /// Host root of the source snapshot.
    pub root: &'a Path,
    /// The source path inside it (cleaned; a trailing `/` or `/.` may remain).
    pub path: &'a str,
    /// Follow a symlink named by `path` itself.
    pub follow: bool,
    /// Copy the contents of a source directory rather than the directory.
    pub contents: bool,
}

/// Copies `src` to `dest_path` (cleaned, trailing `/` or `/.` kept) inside `dest_root`.
///
/// A destination with a trailing slash is created as a directory first, so the source lands
/// inside it; an existing directory as destination also receives the source inside it, except
/// a source directory copied with `contents`.
pub(crate) fn copy_source(
    opts: &Options,
    src: &Source<'_>,
    dest_root: &Path,
    dest_path: &str,
) -> Result<(), FileOpError> {
    let ensured = ensure_dest_dir(opts, dest_root, dest_path)?;
    let dst = resolve_str(dest_root, &clean(dest_path), true)?;
    let src_host = resolve_str(src.root, src.path, src.follow)?;
    let (target, created) = prepare_target(opts, src, &src_host, dest_root, dst)?;
    Copier::new(opts, src.root, dest_root).copy_root(&src_host, &target)?;
    fix_created_dirs(dest_root, &created, opts.ts.as_ref())?;
    fix_created_dirs(dest_root, &ensured, opts.ts.as_ref())
}

/// Creates the directory part of the destination: its parent, or the destination itself when
/// it ends in `/` or `/.`.
fn ensure_dest_dir(
    opts: &Options,
    dest_root: &Path,
    dest_path: &str,
) -> Result<Vec<PathBuf>, FileOpError> {
    let ensure = match split_last(dest_path) {
        (dir, last) if !last.is_empty() && last != "." => dir,
        _ => dest_path,
    };
    let host = resolve_str(dest_root, ensure, true)?;
    mkdir_all(
        dest_root,
        &host,
        opts.dir_mode(),
        opts.owner,
        opts.ts.as_ref(),
    )
}

/// Decides the final target path of the source (fsutil's `prepareTargetDir`) and creates the
/// directories above it. Returns the target and the directories created.
fn prepare_target(
    opts: &Options,
    src: &Source<'_>,
    src_host: &Path,
    dest_root: &Path,
    dst: PathBuf,
) -> Result<(PathBuf, Vec<PathBuf>), FileOpError> {
    let src_is_dir = fs::symlink_metadata(src_host)
        .map_err(|e| FileOpError::os("lstat", shown(src.root, src_host), e))?
        .is_dir();
    let dest_is_dir = match fs::symlink_metadata(&dst) {
        Ok(md) => Some(md.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(FileOpError::os("stat", shown(dest_root, &dst), e)
                .context("failed to lstat destination path"))
        }
    };
    let into = match dest_is_dir {
        Some(_) if src_is_dir => !src.contents,
        Some(is_dir) => is_dir,
        None => false,
    };
    let target = if into { join_base(&dst, src.path) } else { dst };
    let dir_to_make = if src.contents && src_is_dir && dest_is_dir.is_none() {
        target.clone()
    } else {
        target
            .parent()
            .map_or_else(|| target.clone(), Path::to_path_buf)
    };
    let created = mkdir_all(
        dest_root,
        &dir_to_make,
        opts.dir_mode(),
        opts.owner,
        opts.ts.as_ref(),
    )?;
    Ok((target, created))
}

/// `filepath.Join(dst, filepath.Base(src))`: `/` and `.` leave `dst` as it is.
fn join_base(dst: &Path, src: &str) -> PathBuf {
    match base_name(src) {
        "/" | "." => dst.to_path_buf(),
        base => dst.join(base),
    }
}
