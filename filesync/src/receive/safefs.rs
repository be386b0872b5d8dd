//! Filesystem calls confined to the destination tree.
//!
//! Every call takes a directory fd and ONE name component and never follows
//! a symlink in that component (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `unlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`). Directory fds are only
//! obtained through [`open_dir_at`], so a path is always resolved one real
//! directory at a time from the destination root: a symlink anywhere in the
//! tree can be created, replaced or deleted, but never traversed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, utimensat, FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};

use crate::SyncError;

/// The file type bits of a stat.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Status-change time in nanoseconds.
pub(crate) fn ctime_ns(st: &FileStat) -> i64 {
    st.st_ctime
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_ctime_nsec)
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub(crate) fn lstat_at(
    dir: impl AsFd,
    name: &OsStr,
    shown: &Path,
) -> Result<Option<FileStat>, SyncError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(SyncError::io("stat", shown, e)),
    }
}

/// Opens a directory; fails (ELOOP/ENOTDIR) if `name` is a symlink or not a
/// directory.
pub(crate) fn open_dir_at(
    dir: impl AsFd,
    name: &OsStr,
    shown: &Path,
) -> Result<OwnedFd, SyncError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty()).map_err(SyncError::io_with("open directory", shown))
}

/// Creates a directory private to us until its final mode is applied.
pub(crate) fn mkdir_at(dir: impl AsFd, name: &OsStr, shown: &Path) -> Result<(), SyncError> {
    mkdirat(dir, name, Mode::from_bits_truncate(0o700))
        .map_err(SyncError::io_with("create directory", shown))
}

/// Creates a new, empty regular file (it must not exist).
pub(crate) fn create_file_at(
    dir: impl AsFd,
    name: &OsStr,
    shown: &Path,
) -> Result<File, SyncError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::from_bits_truncate(0o600))
        .map_err(SyncError::io_with("create file", shown))?;
    Ok(File::from(fd))
}

/// The names in a directory, without `.` and `..`.
pub(crate) fn list_names(dir: BorrowedFd<'_>, shown: &Path) -> Result<Vec<OsString>, SyncError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut handle = nix::dir::Dir::openat(dir, ".", flags, Mode::empty())
        .map_err(SyncError::io_with("read directory", shown))?;
    let mut names = Vec::new();
    for entry in handle.iter() {
        let entry = entry.map_err(SyncError::io_with("read directory", shown))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// Removes `name` from `dir`, recursively if it is a directory. Symlinks are
/// removed, never followed.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<(), SyncError> {
    let Some(st) = lstat_at(dir, name, shown)? else {
        return Ok(());
    };
    if file_type(&st) == SFlag::S_IFDIR {
        let sub = open_dir_at(dir, name, shown)?;
        // A read-only directory could not be emptied by a non-root user.
        let _ = fchmod(&sub, Mode::from_bits_truncate(0o700));
        for child in list_names(sub.as_fd(), shown)? {
            remove_at(sub.as_fd(), &child, &shown.join(&child))?;
        }
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir)
            .map_err(SyncError::io_with("remove directory", shown))
    } else {
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(SyncError::io_with("remove", shown))
    }
}

/// Metadata to apply to a created entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Owner to set, if ownership is applied.
    pub(crate) owner: Option<(u32, u32)>,
    /// Unix permission bits (with setuid/setgid/sticky); `None` for symlinks.
    pub(crate) perm: Option<u32>,
    pub(crate) mtime_ns: i64,
}

impl Meta {
    /// The metadata a stat asks for; the owner only when `apply_owner`.
    pub(crate) fn from_stat(stat: &nodekit_proto::fsutil::types::Stat, apply_owner: bool) -> Meta {
        Meta {
            owner: apply_owner.then_some((stat.uid, stat.gid)),
            perm: Some(crate::mode::unix_perm_from_go(stat.mode)),
            mtime_ns: stat.mod_time,
        }
    }
}

fn timespec(ns: i64) -> TimeSpec {
    TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

/// Applies owner, then mode (chown may clear setuid bits), then times.
pub(crate) fn apply_meta_fd(fd: impl AsFd, meta: &Meta, shown: &Path) -> Result<(), SyncError> {
    if let Some((uid, gid)) = meta.owner {
        fchown(
            fd.as_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )
        .map_err(SyncError::io_with("chown", shown))?;
    }
    if let Some(perm) = meta.perm {
        fchmod(fd.as_fd(), Mode::from_bits_truncate(perm))
            .map_err(SyncError::io_with("chmod", shown))?;
    }
    let t = timespec(meta.mtime_ns);
    futimens(fd.as_fd(), &t, &t).map_err(SyncError::io_with("set times of", shown))
}

/// Sets owner and times of a symlink, addressed by name without following
/// it (a symlink has no mode of its own on Linux).
pub(crate) fn apply_symlink_meta(
    dir: impl AsFd,
    name: &OsStr,
    meta: &Meta,
    shown: &Path,
) -> Result<(), SyncError> {
    if let Some((uid, gid)) = meta.owner {
        fchownat(
            dir.as_fd(),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(SyncError::io_with("chown", shown))?;
    }
    let t = timespec(meta.mtime_ns);
    utimensat(dir.as_fd(), name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(SyncError::io_with("set times of", shown))
}

/// Creates a FIFO and returns an fd on it (opening a FIFO read-only and
/// non-blocking does not wait for a writer), for [`apply_meta_fd`].
pub(crate) fn make_fifo_at(
    dir: impl AsFd,
    name: &OsStr,
    shown: &Path,
) -> Result<OwnedFd, SyncError> {
    nix::unistd::mkfifoat(dir.as_fd(), name, Mode::from_bits_truncate(0o600))
        .map_err(SyncError::io_with("create fifo", shown))?;
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty()).map_err(SyncError::io_with("open fifo", shown))
}
