//! Extraction of a tar stream into a directory, treated as the root of the archive (as
//! go-archive's chrooted `Untar`): entry names and link targets never leave it.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::{Entry, EntryType};

use crate::error::FileOpError;
use crate::meta::{chmod, lchown, mkdir_all, remove_all, set_times, Owner};
use crate::resolve::{clean, resolve, shown};
use crate::Limits;

/// Extracts every entry of `reader` below `dest` (a host directory inside `dest_root`, used for
/// messages). `owner` replaces the archive's ids when set.
pub(super) fn extract(
    reader: Box<dyn Read>,
    dest_root: &Path,
    dest: &Path,
    owner: Option<Owner>,
    budget: Budget,
) -> Result<(), FileOpError> {
    let x = Extractor {
        dest_root,
        dest,
        owner,
        budget,
    };
    let read_err = |e| FileOpError::os("read", shown(dest_root, dest), e);
    let mut archive = tar::Archive::new(reader);
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        if let Some(dir) = x.entry(entry)? {
            dirs.push(dir);
        }
    }
    // Directory times last: creating entries inside changed them.
    for (path, mtime) in dirs {
        set_times(&path, &mtime, &mtime).map_err(|e| x.err("utimes", &path, e))?;
    }
    Ok(())
}

/// What an extraction may still write: file contents as written, and a tar block per entry
/// (an archive of empty files still costs inodes).
pub(super) struct Budget {
    limit: Option<u64>,
    left: Cell<u64>,
    cancelled: Option<Arc<AtomicBool>>,
}

/// What an entry costs beyond its contents.
const ENTRY_COST: u64 = 512;

/// How much of a file is written between two looks at the cancellation flag.
const COPY_CHUNK: usize = 1 << 20;

impl Budget {
    pub(super) fn new(limits: &Limits) -> Budget {
        Budget {
            limit: limits.unpack_bytes,
            left: Cell::new(limits.unpack_bytes.unwrap_or(u64::MAX)),
            cancelled: limits.cancelled.clone(),
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Takes `bytes` from what is left, or fails once the limit is passed or the build is
    /// cancelled.
    fn charge(&self, bytes: u64) -> Result<(), FileOpError> {
        if self.is_cancelled() {
            return Err(FileOpError::Cancelled);
        }
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(FileOpError::ExtractLimit {
                limit: self.limit.unwrap_or(u64::MAX),
            }),
        }
    }

    /// Copies `from` into `to`, reading at most one byte past what is left so that a longer
    /// stream is caught without being written; stops early when the build is cancelled.
    fn copy(&self, from: &mut impl Read, to: &mut impl io::Write) -> io::Result<u64> {
        let mut from = from.take(self.left.get().saturating_add(1));
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut written = 0u64;
        while !self.is_cancelled() {
            let n = from.read(&mut buf)?;
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n])?;
            written += n as u64;
        }
        Ok(written)
    }
}

struct Extractor<'a> {
    dest_root: &'a Path,
    dest: &'a Path,
    owner: Option<Owner>,
    budget: Budget,
}

impl Extractor<'_> {
    fn err(&self, op: &'static str, at: &Path, e: io::Error) -> FileOpError {
        FileOpError::os(op, shown(self.dest_root, at), e)
    }

    /// Host path of archive name `name` inside `dest`, the last component not followed.
    fn place(&self, name: &[u8], follow: bool) -> Result<PathBuf, FileOpError> {
        let lossy = String::from_utf8_lossy(name);
        let cleaned = clean(&lossy);
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(FileOpError::Invalid(format!(
                "{lossy:?} is outside of the extraction directory"
            )));
        }
        resolve(self.dest, OsStr::from_bytes(name), follow)
    }

    /// Extracts one entry; returns a directory and its mtime for the final pass.
    fn entry(
        &self,
        mut e: Entry<'_, Box<dyn Read>>,
    ) -> Result<Option<(PathBuf, TimeSpec)>, FileOpError> {
        let kind = e.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(None);
        }
        self.budget.charge(ENTRY_COST)?;
        let name = e.path_bytes().into_owned();
        let path = self.place(&name, false)?;
        if let Some(parent) = path.parent() {
            mkdir_all(self.dest_root, parent, 0o755, None, None)?;
        }
        if let Ok(md) = fs::symlink_metadata(&path) {
            if path == self.dest && md.is_dir() {
                return Ok(None);
            }
            if !(md.is_dir() && kind == EntryType::Directory) {
                remove_all(&path).map_err(|err| self.err("unlinkat", &path, err))?;
            }
        }
        let header = e.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
        let ids = match self.owner {
            Some(o) => o,
            None => (
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ),
        };
        self.create(&mut e, kind, &path, mode)?;
        lchown(&path, ids).map_err(|err| self.err("lchown", &path, err))?;
        if kind != EntryType::Symlink && kind != EntryType::Link {
            chmod(&path, mode).map_err(|err| self.err("chmod", &path, err))?;
        }
        if kind != EntryType::Link {
            set_times(&path, &mtime, &mtime).map_err(|err| self.err("utimes", &path, err))?;
        }
        Ok((kind == EntryType::Directory).then_some((path, mtime)))
    }

    fn create(
        &self,
        e: &mut Entry<'_, Box<dyn Read>>,
        kind: EntryType,
        path: &Path,
        mode: u32,
    ) -> Result<(), FileOpError> {
        let os = |op| move |err| self.err(op, path, err);
        match kind {
            EntryType::Directory => match fs::symlink_metadata(path) {
                Ok(md) if md.is_dir() => Ok(()),
                _ => fs::DirBuilder::new()
                    .mode(mode & 0o777)
                    .create(path)
                    .map_err(os("mkdir")),
            },
            EntryType::Regular | EntryType::Continuous => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
                    .open(path)
                    .map_err(os("open"))?;
                let written = self.budget.copy(e, &mut out).map_err(os("write"))?;
                self.budget.charge(written)
            }
            EntryType::Symlink => {
                let target = e.link_name_bytes().unwrap_or_default().into_owned();
                let target = OsStr::from_bytes(&target);
                std::os::unix::fs::symlink(target, path).map_err(os("symlink"))
            }
            EntryType::Link => {
                let target = e.link_name_bytes().unwrap_or_default().into_owned();
                let old = self.place(&target, false)?;
                fs::hard_link(&old, path).map_err(os("link"))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.node(e, kind, path, mode),
            other => Err(FileOpError::Invalid(format!(
                "unhandled tar header type {:?} for {}",
                other,
                shown(self.dest_root, path)
            ))),
        }
    }

    fn node(
        &self,
        e: &Entry<'_, Box<dyn Read>>,
        kind: EntryType,
        path: &Path,
        mode: u32,
    ) -> Result<(), FileOpError> {
        let h = e.header();
        let dev = makedev(
            u64::from(h.device_major().ok().flatten().unwrap_or(0)),
            u64::from(h.device_minor().ok().flatten().unwrap_or(0)),
        );
        let flag = match kind {
            EntryType::Char => SFlag::S_IFCHR,
            EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        mknod(path, flag, Mode::from_bits_truncate(mode), dev)
            .map_err(|err| self.err("mknod", path, err.into()))
    }
}
