//! The chain of open destination directories along the walk.
//!
//! Entries arrive depth-first, so the directories that can still receive
//! children form a stack from the root. Each keeps the names it had on disk
//! that were not sent again; when the walk leaves the directory, those are
//! deleted (the incremental "no longer sent" rule).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::safefs::{list_names, open_dir_at, remove_at};
use crate::SyncError;

/// An open directory of the destination.
pub(crate) struct OpenDir {
    /// Wire path (`""` for the root).
    pub(crate) path: String,
    pub(crate) fd: OwnedFd,
    /// Names on disk not (yet) sent in this listing.
    pub(crate) leftovers: BTreeSet<OsString>,
}

/// A directory fd either borrowed from the stack or opened for the call.
pub(crate) enum DirHandle<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl AsFd for DirHandle<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirHandle::Borrowed(fd) => *fd,
            DirHandle::Owned(fd) => fd.as_fd(),
        }
    }
}

/// The root and the directories currently open below it.
pub(crate) struct DirStack {
    dest: PathBuf,
    /// Never empty: `stack[0]` is the root.
    stack: Vec<OpenDir>,
    /// Leftovers stay (a merge into the destination).
    keep_unlisted: bool,
}

impl DirStack {
    /// Creates `dest` if needed and opens it as the root.
    pub(crate) fn open(dest: &Path, keep_unlisted: bool) -> Result<DirStack, SyncError> {
        std::fs::create_dir_all(dest).map_err(SyncError::io_with("create directory", dest))?;
        let flags = nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(dest, flags, nix::sys::stat::Mode::empty())
            .map_err(SyncError::io_with("open directory", dest))?;
        let leftovers = list_names(fd.as_fd(), dest)?.into_iter().collect();
        let root = OpenDir {
            path: String::new(),
            fd,
            leftovers,
        };
        Ok(DirStack {
            dest: dest.to_path_buf(),
            stack: vec![root],
            keep_unlisted,
        })
    }

    /// The local path of a wire path, for messages.
    pub(crate) fn shown(&self, path: &str) -> PathBuf {
        self.dest.join(path)
    }

    /// Makes `dir` the innermost open directory, closing (and cleaning) the
    /// deeper ones, and returns it. The validator has checked that `dir` is
    /// on the stack.
    pub(crate) fn enter(
        &mut self,
        dir: &str,
        deleted: &mut Vec<String>,
    ) -> Result<&mut OpenDir, SyncError> {
        let pos = self
            .stack
            .iter()
            .rposition(|d| d.path == dir)
            .ok_or_else(|| SyncError::Internal(format!("directory {dir:?} is not open")))?;
        while self.stack.len() > pos + 1 {
            self.close_top(deleted)?;
        }
        let last = self.stack.len() - 1;
        Ok(&mut self.stack[last])
    }

    /// Adds a directory just created or reused below the innermost one.
    pub(crate) fn push(&mut self, path: String, fd: OwnedFd, leftovers: BTreeSet<OsString>) {
        self.stack.push(OpenDir {
            path,
            fd,
            leftovers,
        });
    }

    /// Ends the listing: cleans every open directory, the root last.
    pub(crate) fn close_all(&mut self, deleted: &mut Vec<String>) -> Result<(), SyncError> {
        while self.stack.len() > 1 {
            self.close_top(deleted)?;
        }
        let root = &mut self.stack[0];
        let leftovers = std::mem::take(&mut root.leftovers);
        if self.keep_unlisted {
            return Ok(());
        }
        delete_leftovers(root.fd.as_fd(), "", leftovers, &self.dest, deleted)
    }

    fn close_top(&mut self, deleted: &mut Vec<String>) -> Result<(), SyncError> {
        let Some(dir) = self.stack.pop() else {
            return Ok(());
        };
        if self.keep_unlisted {
            return Ok(());
        }
        delete_leftovers(
            dir.fd.as_fd(),
            &dir.path,
            dir.leftovers,
            &self.dest,
            deleted,
        )
    }

    /// Opens the directory at wire path `dir` (`""` is the root): from the
    /// stack when it is open, otherwise one component at a time from the
    /// root, never following a symlink.
    pub(crate) fn open_dir(&self, dir: &str) -> Result<DirHandle<'_>, SyncError> {
        if let Some(open) = self.stack.iter().rev().find(|d| d.path == dir) {
            return Ok(DirHandle::Borrowed(open.fd.as_fd()));
        }
        let mut current: Option<OwnedFd> = None;
        for comp in dir.split('/') {
            let at = current
                .as_ref()
                .map_or(self.stack[0].fd.as_fd(), |fd| fd.as_fd());
            current = Some(open_dir_at(at, OsStr::new(comp), &self.shown(dir))?);
        }
        current
            .map(DirHandle::Owned)
            .ok_or_else(|| SyncError::Internal("empty directory path".into()))
    }
}

/// Removes the names of a directory that the sender did not list.
fn delete_leftovers(
    fd: BorrowedFd<'_>,
    dir: &str,
    leftovers: BTreeSet<OsString>,
    dest: &Path,
    deleted: &mut Vec<String>,
) -> Result<(), SyncError> {
    for name in leftovers {
        let lossy = name.to_string_lossy();
        let path = if dir.is_empty() {
            lossy.into_owned()
        } else {
            format!("{dir}/{lossy}")
        };
        remove_at(fd, &name, &dest.join(&path))?;
        deleted.push(path);
    }
    Ok(())
}
