//! Copying one non-directory entry, and the metadata of any entry.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;

use super::walk::Copier;
use super::xattr::copy_xattrs;
use crate::error::FileOpError;
use crate::meta::{chmod, lchown, set_times};

impl Copier<'_> {
    /// Chown, chmod (never on a symlink) and times of `target` from the source's `fi` and the
    /// action's overrides (fsutil's `copyFileInfo`), then the extended attributes.
    pub(super) fn copy_file_info(
        &self,
        fi: &Metadata,
        src: &Path,
        target: &Path,
    ) -> Result<(), FileOpError> {
        let shown = || self.shown_dest(target);
        let wrap = |op, e| FileOpError::os(op, shown(), e).context("failed to copy file info");
        let owner = self.opts.owner.unwrap_or((fi.uid(), fi.gid()));
        lchown(target, owner).map_err(|e| wrap("lchown", e))?;
        if !fi.file_type().is_symlink() {
            let bits = fi.mode() & 0o7777;
            let mode = match &self.opts.mode {
                Some(spec) => spec.apply(bits, fi.is_dir()),
                None => bits,
            };
            chmod(target, mode).map_err(|e| wrap("chmod", e))?;
        }
        self.copy_file_timestamp(fi, target)
            .map_err(|e| e.context("failed to copy file info"))?;
        copy_xattrs(src, target);
        Ok(())
    }

    /// Sets the times of `target`: the action's timestamp, else the source's atime and mtime.
    pub(super) fn copy_file_timestamp(
        &self,
        fi: &Metadata,
        target: &Path,
    ) -> Result<(), FileOpError> {
        let (atime, mtime) = match &self.opts.ts {
            Some(ts) => (*ts, *ts),
            None => (
                TimeSpec::new(fi.atime(), fi.atime_nsec()),
                TimeSpec::new(fi.mtime(), fi.mtime_nsec()),
            ),
        };
        set_times(target, &atime, &mtime)
            .map_err(|e| FileOpError::os("utimes", self.shown_dest(target), e))
    }

    /// Copies a regular file, or links it to an earlier copy of the same inode.
    pub(super) fn copy_regular(
        &mut self,
        src: &Path,
        target: &Path,
        fi: &Metadata,
    ) -> Result<(), FileOpError> {
        if fi.nlink() > 1 {
            let key = (fi.dev(), fi.ino());
            if let Some(first) = self.inodes.get(&key) {
                return fs::hard_link(first, target).map_err(|error| {
                    let (old, new) = (self.shown_dest(first), self.shown_dest(target));
                    let link = FileOpError::Link {
                        op: "link",
                        old,
                        new,
                        error,
                    };
                    link.context("failed to create hard link")
                });
            }
            self.inodes.insert(key, target.to_path_buf());
        }
        self.copy_contents(src, target)
            .map_err(|e| e.context("failed to copy files"))
    }

    fn copy_contents(&self, src: &Path, target: &Path) -> Result<(), FileOpError> {
        let flags = (OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits();
        let mut input = fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(src)
            .map_err(|e| FileOpError::os("open", self.shown_src(src), e))?;
        let out_err = |e| FileOpError::os("open", self.shown_dest(target), e);
        let mut output = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(flags)
            .open(target)
            .map_err(out_err)?;
        io::copy(&mut input, &mut output)
            .map_err(|e| FileOpError::os("write", self.shown_dest(target), e))?;
        Ok(())
    }

    /// Recreates a symlink with the same target text.
    pub(super) fn copy_symlink(&self, src: &Path, target: &Path) -> Result<(), FileOpError> {
        let link =
            fs::read_link(src).map_err(|e| FileOpError::os("readlink", self.shown_src(src), e))?;
        std::os::unix::fs::symlink(&link, target).map_err(|error| FileOpError::Link {
            op: "symlink",
            old: link.to_string_lossy().into_owned(),
            new: self.shown_dest(target),
            error,
        })
    }

    /// Recreates a device node or FIFO; a socket becomes an empty regular file (as upstream).
    pub(super) fn copy_special(&self, target: &Path, fi: &Metadata) -> Result<(), FileOpError> {
        let ft = fi.file_type();
        let kind = if ft.is_block_device() {
            SFlag::S_IFBLK
        } else if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_fifo() {
            SFlag::S_IFIFO
        } else {
            SFlag::S_IFREG
        };
        let perm = Mode::from_bits_truncate(fi.mode() & 0o7777);
        mknod(target, kind, perm, fi.rdev())
            .map_err(|e| FileOpError::os("mknod", self.shown_dest(target), e.into()))
            .map_err(|e| e.context("failed to create device"))
    }

    /// Makes room for a non-directory at `target`: an existing directory is an error, anything
    /// else is removed (fsutil's `ensureEmptyFileTarget`).
    pub(super) fn ensure_empty_file_target(&self, target: &Path) -> Result<(), FileOpError> {
        match fs::symlink_metadata(target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FileOpError::os("lstat", self.shown_dest(target), e)
                .context("failed to lstat file target")),
            Ok(md) if md.is_dir() => Err(FileOpError::ReplaceDirWithFile {
                path: self.shown_dest(target),
            }),
            Ok(_) => fs::remove_file(target)
                .map_err(|e| FileOpError::os("remove", self.shown_dest(target), e)),
        }
    }

    /// Creates directory `dst` for source directory `fi` unless it exists; an existing
    /// directory gets the source's mode when `overwrite`. Returns whether it was created.
    pub(super) fn copy_directory_only(
        &self,
        dst: &Path,
        fi: &Metadata,
        overwrite: bool,
    ) -> Result<bool, FileOpError> {
        let shown = || self.shown_dest(dst);
        match fs::symlink_metadata(dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(fi.mode() & 0o1777)
                    .create(dst)
                    .map_err(|e| {
                        FileOpError::os("mkdir", shown(), e)
                            .context(format!("failed to mkdir {}", shown()))
                    })?;
                Ok(true)
            }
            Err(e) => Err(FileOpError::os("lstat", shown(), e)),
            Ok(md) if !md.is_dir() => Err(FileOpError::CopyToNonDir { path: shown() }),
            Ok(_) if overwrite => {
                chmod(dst, fi.mode() & 0o7777).map_err(|e| {
                    FileOpError::os("chmod", shown(), e)
                        .context(format!("failed to chmod on {}", shown()))
                })?;
                Ok(false)
            }
            Ok(_) => Ok(false),
        }
    }
}
