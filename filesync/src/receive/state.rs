//! The sidecar record kept outside `dest`: for every regular file of the
//! last successful sync, its stat fields, where it lives on disk (inode and
//! ctime) and its blake3 hash, so that an unchanged file is not reread.
//!
//! A hash is reused only if the file on disk is the very inode recorded and
//! its ctime is unchanged: any write, chmod, chown or rename-over since the
//! record was taken changes one of them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;
use nodekit_proto::fsutil::types::Stat;
use serde::{Deserialize, Serialize};

use super::safefs::ctime_ns;
use crate::SyncError;

const VERSION: u32 = 1;

/// One regular file as recorded after a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: i64,
    pub(crate) mod_time: i64,
    pub(crate) ino: u64,
    pub(crate) ctime: i64,
    pub(crate) hash: String,
}

impl FileRecord {
    /// Records `stat` as received and written to the on-disk file `disk`.
    pub(crate) fn new(stat: &Stat, disk: &FileStat, hash: String) -> Self {
        FileRecord {
            mode: stat.mode,
            uid: stat.uid,
            gid: stat.gid,
            size: stat.size,
            mod_time: stat.mod_time,
            ino: disk.st_ino,
            ctime: ctime_ns(disk),
            hash,
        }
    }

    /// Takes the file's identity again after a change we made ourselves
    /// (linking it elsewhere changes its ctime).
    pub(crate) fn refresh(&mut self, disk: &FileStat) {
        self.ino = disk.st_ino;
        self.ctime = ctime_ns(disk);
    }
}

/// The whole record, keyed by wire path.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    version: u32,
    files: BTreeMap<String, FileRecord>,
}

impl StateRecord {
    /// Loads the record. A missing, unreadable or foreign-version file
    /// yields an empty record: it is only a cache, and without it unchanged
    /// files are rehashed from disk instead.
    pub(crate) fn load(path: &Path) -> StateRecord {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<StateRecord>(&bytes).ok())
            .filter(|r| r.version == VERSION)
            .unwrap_or_default()
    }

    /// The record of `path`, if it describes exactly this stat and this
    /// on-disk file (so its hash is the file's content hash).
    pub(crate) fn reusable(&self, path: &str, disk: &FileStat, stat: &Stat) -> Option<&FileRecord> {
        let r = self.files.get(path)?;
        let same = r.mode == stat.mode
            && r.uid == stat.uid
            && r.gid == stat.gid
            && r.size == stat.size
            && r.mod_time == stat.mod_time
            && r.ino == disk.st_ino
            && r.ctime == ctime_ns(disk);
        same.then_some(r)
    }

    pub(crate) fn insert(&mut self, path: String, record: FileRecord) {
        self.files.insert(path, record);
    }

    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut FileRecord> {
        self.files.get_mut(path)
    }

    /// Writes the record atomically (temporary file, rename). Not synced to disk: it is only
    /// a cache, and a record lost or torn by a crash loads as empty (files are rehashed).
    pub(crate) fn save(&self, path: &Path) -> Result<(), SyncError> {
        #[derive(Serialize)]
        struct View<'a> {
            version: u32,
            files: &'a BTreeMap<String, FileRecord>,
        }
        let json = serde_json::to_vec(&View {
            version: VERSION,
            files: &self.files,
        })
        .map_err(|e| SyncError::io("encode state file", path, e))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(SyncError::io_with("create directory", parent))?;
        }
        let tmp = temp_path(path);
        let write = || -> std::io::Result<()> { std::fs::File::create(&tmp)?.write_all(&json) };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(SyncError::io("write state file", &tmp, e));
        }
        std::fs::rename(&tmp, path).map_err(SyncError::io_with("replace state file", path))
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}
