//! Bookkeeping of a receive: the entries of the new tree, the new sidecar
//! state, and what still has to be done once all content has arrived.

use std::collections::BTreeMap;

use nix::sys::stat::FileStat;
use nodekit_proto::fsutil::types::Stat;

use super::state::{FileRecord, StateRecord};
use crate::summary::{tree_digest, Entry, EntryKind, ReceiveSummary};

/// A regular file whose content has been written.
pub(crate) struct WrittenFile {
    pub(crate) stat: Stat,
    /// The blake3 hash of the content.
    pub(crate) hash: blake3::Hash,
    /// Content bytes received.
    pub(crate) received: u64,
    /// The file after its metadata was applied.
    pub(crate) disk: FileStat,
}

/// Everything recorded while entries and content arrive.
pub(crate) struct Record {
    entries: BTreeMap<String, Entry>,
    /// The sidecar of the previous sync.
    old_state: StateRecord,
    /// The sidecar being built for this sync.
    pub(crate) new_state: StateRecord,
    transferred: Vec<String>,
    pub(crate) deleted: Vec<String>,
    /// Directory stats in walk order: their metadata is applied last.
    pub(crate) dirs: Vec<Stat>,
    /// Hardlinks as (path, target), created once all content is there.
    pub(crate) links: Vec<(String, String)>,
    files_reused: u64,
    bytes_reused: u64,
    bytes_transferred: u64,
}

impl Record {
    pub(crate) fn new(old_state: StateRecord) -> Record {
        Record {
            entries: BTreeMap::new(),
            old_state,
            new_state: StateRecord::default(),
            transferred: Vec::new(),
            deleted: Vec::new(),
            dirs: Vec::new(),
            links: Vec::new(),
            files_reused: 0,
            bytes_reused: 0,
            bytes_transferred: 0,
        }
    }

    /// Adds an entry (regular files get their hash when it is known).
    pub(crate) fn add(&mut self, kind: EntryKind, stat: &Stat) {
        self.entries
            .insert(stat.path.clone(), Entry::from_stat(kind, stat));
    }

    /// Keeps the file already on disk if the previous sync recorded this
    /// very stat for this very file; returns whether it did.
    pub(crate) fn try_reuse(&mut self, stat: &Stat, disk: Option<&FileStat>) -> bool {
        let Some(disk) = disk else { return false };
        let is_regular = disk.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
        let Some(old) = self
            .old_state
            .reusable(&stat.path, disk, stat)
            .filter(|_| is_regular)
        else {
            return false;
        };
        // A record whose hash does not parse is not trusted: the file is sent again.
        let Ok(hash) = blake3::Hash::from_hex(&old.hash) else {
            return false;
        };
        let old = old.clone();
        self.set_hash(&stat.path, hash);
        self.new_state.insert(stat.path.clone(), old);
        self.files_reused += 1;
        self.bytes_reused += u64::try_from(stat.size).unwrap_or(0);
        true
    }

    /// Records a file whose content was received.
    pub(crate) fn file_written(&mut self, file: WrittenFile) {
        let path = file.stat.path.clone();
        self.set_hash(&path, file.hash);
        let record = FileRecord::new(&file.stat, &file.disk, file.hash.to_hex().to_string());
        self.new_state.insert(path.clone(), record);
        self.transferred.push(path);
        self.bytes_transferred += file.received;
    }

    fn set_hash(&mut self, path: &str, hash: blake3::Hash) {
        if let Some(entry) = self.entries.get_mut(path) {
            entry.hash = Some(hash);
        }
    }

    /// The summary of the finished receive.
    pub(crate) fn into_summary(mut self) -> ReceiveSummary {
        self.transferred.sort();
        ReceiveSummary {
            digest: tree_digest(&self.entries),
            files_transferred: self.transferred.len() as u64,
            bytes_transferred: self.bytes_transferred,
            files_reused: self.files_reused,
            bytes_reused: self.bytes_reused,
            entries: self.entries,
            transferred: self.transferred,
            deleted: self.deleted,
            unchanged: false,
        }
    }
}
