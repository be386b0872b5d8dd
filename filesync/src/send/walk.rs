//! The sender's walk: depth-first, names sorted byte-wise per directory, the
//! root itself skipped, filtered, with hardlinks detected among sent files.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nodekit_proto::fsutil::types::Stat;

use crate::mode::{go_mode_from_unix, MODE_SOCKET};
use crate::send::filter::{Decision, DirMatch, Filter};
use crate::SyncError;

/// One entry to send: its stat, and for regular files the local file to read.
#[derive(Debug)]
pub(crate) struct WalkEntry {
    pub(crate) stat: Stat,
    pub(crate) source: Option<PathBuf>,
}

/// A directory on the current path whose STAT may not be sent yet: with
/// filters, a directory is only sent once something inside it is.
struct PendingDir {
    stat: Stat,
    sent: bool,
}

/// Walks `root` and calls `emit` for every entry to send, in order.
pub(crate) fn walk(
    root: &Path,
    filter: &Filter,
    reset_owner: bool,
    emit: &mut dyn FnMut(WalkEntry) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    let mut walker = Walker {
        filter,
        reset_owner,
        emit,
        pending: Vec::new(),
        hardlinks: HashMap::new(),
    };
    walker.walk_dir("", root, &DirMatch::default(), false)
}

/// Walks each `(name, dir)` as a top-level directory `name` (sorted, valid
/// names: the caller checked).
pub(crate) fn walk_named(
    roots: &[(String, PathBuf)],
    filter: &Filter,
    reset_owner: bool,
    emit: &mut dyn FnMut(WalkEntry) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    for (name, root) in roots {
        let stat = Stat {
            path: name.clone(),
            mode: crate::mode::MODE_DIR | 0o755,
            ..Default::default()
        };
        emit(WalkEntry { stat, source: None })?;
        // Hardlinks are per tree: each root is its own filesystem.
        let mut walker = Walker {
            filter,
            reset_owner,
            emit: &mut *emit,
            pending: Vec::new(),
            hardlinks: HashMap::new(),
        };
        walker.walk_dir(name, root, &DirMatch::default(), false)?;
    }
    Ok(())
}

struct Walker<'a> {
    filter: &'a Filter,
    /// Send uid/gid 0 (buildctl's behaviour).
    reset_owner: bool,
    emit: &'a mut dyn FnMut(WalkEntry) -> Result<(), SyncError>,
    pending: Vec<PendingDir>,
    /// (dev, ino) of multiply-linked files already sent -> their path.
    hardlinks: HashMap<(u64, u64), String>,
}

impl Walker<'_> {
    fn walk_dir(
        &mut self,
        rel: &str,
        local: &Path,
        state: &DirMatch,
        hidden: bool,
    ) -> Result<(), SyncError> {
        let names = match sorted_names(local) {
            Ok(names) => names,
            // Like upstream, an unreadable directory that is not being sent
            // anyway is not an error.
            Err(SyncError::Io { source, .. })
                if hidden && source.kind() == ErrorKind::PermissionDenied =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for name in names.utf8 {
            let child_rel = child_path(rel, &name);
            self.visit(child_rel, local.join(&name), state)?;
        }
        for name in names.other {
            self.skip_unsendable(rel, &local.join(name), state)?;
        }
        Ok(())
    }

    /// A name that is not UTF-8 cannot be sent (the wire's paths are UTF-8 strings): fine if
    /// the patterns leave it out (matched as its lossy form, as with Go's byte-wise match),
    /// else an error naming it.
    fn skip_unsendable(&self, rel: &str, local: &Path, parent: &DirMatch) -> Result<(), SyncError> {
        let meta = match std::fs::symlink_metadata(local) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SyncError::io("stat", local, e)),
        };
        let lossy = local
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self
            .filter
            .decide(&child_path(rel, &lossy), meta.is_dir(), parent)
        {
            Decision::Prune => Ok(()),
            Decision::Hide(_) if !meta.is_dir() => Ok(()),
            _ => Err(SyncError::NonUtf8Path {
                path: local.to_path_buf(),
            }),
        }
    }

    fn visit(&mut self, rel: String, local: PathBuf, parent: &DirMatch) -> Result<(), SyncError> {
        let meta = match std::fs::symlink_metadata(&local) {
            Ok(m) => m,
            // Removed since the directory was read.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(SyncError::io("stat", &local, e)),
        };
        // Sockets cannot be recreated meaningfully; they are not sent.
        if meta.file_type().is_socket() {
            return Ok(());
        }
        let (state, hidden) = match self.filter.decide(&rel, meta.is_dir(), parent) {
            Decision::Prune => return Ok(()),
            Decision::Hide(state) => (state, true),
            Decision::Emit(state) => (state, false),
        };
        let mut stat = make_stat(rel.clone(), &local, &meta)?;
        if self.reset_owner {
            (stat.uid, stat.gid) = (0, 0);
        }
        if meta.is_dir() {
            self.pending.push(PendingDir { stat, sent: false });
            if !hidden {
                self.flush_pending()?;
            }
            let result = self.walk_dir(&rel, &local, &state, hidden);
            self.pending.pop();
            return result;
        }
        if hidden {
            return Ok(());
        }
        self.flush_pending()?;
        self.emit_entry(stat, &meta, local)
    }

    /// Sends the directories on the current path that were not sent yet.
    fn flush_pending(&mut self) -> Result<(), SyncError> {
        for dir in self.pending.iter_mut().filter(|d| !d.sent) {
            dir.sent = true;
            (self.emit)(WalkEntry {
                stat: dir.stat.clone(),
                source: None,
            })?;
        }
        Ok(())
    }

    fn emit_entry(
        &mut self,
        mut stat: Stat,
        meta: &Metadata,
        local: PathBuf,
    ) -> Result<(), SyncError> {
        if !meta.file_type().is_file() {
            return (self.emit)(WalkEntry { stat, source: None });
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            // Upstream keeps the inode's size in a hardlink's stat.
            if let Some(first) = self.hardlinks.get(&key) {
                stat.linkname = first.clone();
            } else {
                self.hardlinks.insert(key, stat.path.clone());
            }
        }
        (self.emit)(WalkEntry {
            stat,
            source: Some(local),
        })
    }
}

/// The names in a directory: the UTF-8 ones sorted byte-wise like Go's `WalkDir`, and the
/// others.
struct Names {
    utf8: Vec<String>,
    other: Vec<std::ffi::OsString>,
}

fn sorted_names(dir: &Path) -> Result<Names, SyncError> {
    let entries = std::fs::read_dir(dir).map_err(SyncError::io_with("read directory", dir))?;
    let mut names = Names {
        utf8: Vec::new(),
        other: Vec::new(),
    };
    for entry in entries {
        let entry = entry.map_err(SyncError::io_with("read directory", dir))?;
        match entry.file_name().into_string() {
            Ok(name) => names.utf8.push(name),
            Err(name) => names.other.push(name),
        }
    }
    names.utf8.sort_unstable();
    Ok(names)
}

fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Builds the wire stat of a local entry (upstream `mkstat`, without xattrs).
fn make_stat(path: String, local: &Path, meta: &Metadata) -> Result<Stat, SyncError> {
    let mut stat = Stat {
        path,
        mode: go_mode_from_unix(meta.mode()) & !MODE_SOCKET,
        uid: meta.uid(),
        gid: meta.gid(),
        mod_time: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ..Default::default()
    };
    if !meta.is_dir() {
        stat.size = i64::try_from(meta.size()).unwrap_or(i64::MAX);
    }
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target =
            std::fs::read_link(local).map_err(SyncError::io_with("read symlink", local))?;
        stat.linkname =
            target
                .into_os_string()
                .into_string()
                .map_err(|_| SyncError::NonUtf8Path {
                    path: local.to_path_buf(),
                })?;
    }
    if file_type.is_block_device() || file_type.is_char_device() {
        let (major, minor) = split_dev(meta.rdev());
        stat.devmajor = major;
        stat.devminor = minor;
    }
    Ok(stat)
}

/// Device numbers as upstream encodes them (Linux `major`/`minor` layout).
fn split_dev(rdev: u64) -> (i64, i64) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    // Both fit in 20 bits.
    (major as i64, minor as i64)
}
