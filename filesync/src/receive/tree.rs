//! Applies validated STAT entries to the destination as they arrive.
//!
//! Whatever is on disk under the entry's name is replaced unless it can be
//! kept: a directory stays a directory (its contents are reconciled entry by
//! entry), and a regular file whose stat is unchanged since the last sync
//! keeps its content. Symlinks and FIFOs are recreated; hardlinks are made
//! at the end, when their targets have their content.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{fchmodat, FchmodatFlags, FileStat, Mode, SFlag};
use nodekit_proto::fsutil::types::Stat;

use super::dirs::DirStack;
use super::record::Record;
use super::safefs::{
    apply_meta_fd, apply_symlink_meta, file_type, list_names, lstat_at, make_fifo_at, mkdir_at,
    open_dir_at, remove_at, Meta,
};
use crate::summary::EntryKind;
use crate::{wirepath, SyncError};

/// The destination tree being brought up to date.
pub(crate) struct Tree {
    pub(crate) dirs: DirStack,
    pub(crate) record: Record,
    pub(crate) apply_owner: bool,
}

impl Tree {
    /// Applies one entry; returns `true` when it is a regular file whose
    /// content must be requested.
    pub(crate) fn apply(&mut self, stat: &Stat, kind: EntryKind) -> Result<bool, SyncError> {
        let (dir, name) = wirepath::split_parent(&stat.path);
        let name = OsStr::new(name);
        let shown = self.dirs.shown(&stat.path);
        let parent = self.dirs.enter(dir, &mut self.record.deleted)?;
        parent.leftovers.remove(name);
        let at = parent.fd.as_fd();
        let existing = lstat_at(at, name, &shown)?;
        let meta = Meta::from_stat(stat, self.apply_owner);
        self.record.add(kind, stat);
        match kind {
            EntryKind::Dir => {
                let (fd, leftovers) = make_dir(at, name, existing.as_ref(), &shown)?;
                self.dirs.push(stat.path.clone(), fd, leftovers);
                self.record.dirs.push(stat.clone());
            }
            EntryKind::Symlink => {
                clear(at, name, existing.is_some(), &shown)?;
                nix::unistd::symlinkat(stat.linkname.as_str(), at, name)
                    .map_err(SyncError::io_with("create symlink", &shown))?;
                apply_symlink_meta(at, name, &meta, &shown)?;
            }
            EntryKind::Fifo => {
                clear(at, name, existing.is_some(), &shown)?;
                let fd = make_fifo_at(at, name, &shown)?;
                apply_meta_fd(&fd, &meta, &shown)?;
            }
            EntryKind::Hardlink => {
                clear(at, name, existing.is_some(), &shown)?;
                self.record
                    .links
                    .push((stat.path.clone(), stat.linkname.clone()));
            }
            EntryKind::File => {
                if self.record.try_reuse(stat, existing.as_ref()) {
                    return Ok(false);
                }
                clear(at, name, existing.is_some(), &shown)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Removes whatever is at `name` (recursively, never following symlinks).
fn clear(at: BorrowedFd<'_>, name: &OsStr, exists: bool, shown: &Path) -> Result<(), SyncError> {
    if exists {
        remove_at(at, name, shown)?;
    }
    Ok(())
}

/// Reuses the directory at `name` or creates it. Returns it open, with the
/// names it already holds. Its final mode and times are applied at the end;
/// until then it stays writable for us.
fn make_dir(
    at: BorrowedFd<'_>,
    name: &OsStr,
    existing: Option<&FileStat>,
    shown: &Path,
) -> Result<(OwnedFd, BTreeSet<OsString>), SyncError> {
    if let Some(st) = existing.filter(|st| file_type(st) == SFlag::S_IFDIR) {
        if st.st_mode & 0o700 != 0o700 {
            // Checked to be a directory just above; it is ours to change.
            let mode = Mode::from_bits_truncate(st.st_mode & 0o7777 | 0o700);
            fchmodat(at, name, mode, FchmodatFlags::FollowSymlink)
                .map_err(SyncError::io_with("chmod", shown))?;
        }
        let fd = open_dir_at(at, name, shown)?;
        let names = list_names(fd.as_fd(), shown)?.into_iter().collect();
        return Ok((fd, names));
    }
    clear(at, name, existing.is_some(), shown)?;
    mkdir_at(at, name, shown)?;
    Ok((open_dir_at(at, name, shown)?, BTreeSet::new()))
}
