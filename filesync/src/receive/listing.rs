//! The fast path of a repeated sync. A receive that ends well writes, beside the state file,
//! which listing (a hash of every STAT entry, in order) produced which tree. When the caller
//! says `dest` holds that tree and the sender's listing is the same again, nothing on disk has
//! to change: the receiver answers FIN without touching `dest` at all (no lookups, no
//! metadata, no new state), which is most of what an unchanged build context costs. Entries
//! are compared as they arrive, so a changed listing goes the ordinary way from its first
//! difference on.

use std::path::{Path, PathBuf};

use nodekit_proto::fsutil::types::Stat;
use prost::Message;

use crate::SyncError;

/// The hash of one STAT entry as the sender encoded its fields.
pub(crate) fn entry_hash(stat: &Stat) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"nodekit-filesync-listing-v1\0");
    hasher.update(&stat.encode_to_vec());
    *hasher.finalize().as_bytes()
}

/// Which listing (every entry's hash, in order) produced which tree (the summary's digest),
/// as the last good receive saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListingRecord {
    pub(crate) tree: String,
    pub(crate) entries: Vec<[u8; 32]>,
}

const MAGIC: &[u8] = b"nodekit-listing-v1\n";

impl ListingRecord {
    fn path(state_file: &Path) -> PathBuf {
        let mut name = state_file.file_name().unwrap_or_default().to_os_string();
        name.push(".listing");
        state_file.with_file_name(name)
    }

    /// The record beside `state_file`; none if absent or damaged (it is only a shortcut).
    pub(crate) fn load(state_file: &Path) -> Option<ListingRecord> {
        let bytes = std::fs::read(Self::path(state_file)).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let newline = rest.iter().position(|b| *b == b'\n')?;
        let tree = std::str::from_utf8(&rest[..newline]).ok()?.to_string();
        let hashes = &rest[newline + 1..];
        if !hashes.len().is_multiple_of(32) {
            return None;
        }
        let entries = hashes
            .chunks_exact(32)
            .map(|c| c.try_into().ok())
            .collect::<Option<Vec<[u8; 32]>>>()?;
        Some(ListingRecord { tree, entries })
    }

    /// Replaces the record (temporary file, then rename: a reader sees the old or the new).
    pub(crate) fn save(&self, state_file: &Path) -> Result<(), SyncError> {
        let path = Self::path(state_file);
        let mut bytes =
            Vec::with_capacity(MAGIC.len() + self.tree.len() + 1 + 32 * self.entries.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(self.tree.as_bytes());
        bytes.push(b'\n');
        self.entries.iter().for_each(|e| bytes.extend_from_slice(e));
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, bytes).map_err(SyncError::io_with("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(SyncError::io_with("replace", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, size: i64) -> Stat {
        Stat {
            path: path.into(),
            size,
            ..Default::default()
        }
    }

    #[test]
    fn entry_hashes_follow_every_field() {
        assert_eq!(entry_hash(&stat("a", 1)), entry_hash(&stat("a", 1)));
        assert_ne!(entry_hash(&stat("a", 1)), entry_hash(&stat("a", 2)));
        assert_ne!(entry_hash(&stat("a", 1)), entry_hash(&stat("b", 1)));
    }

    #[test]
    fn records_round_trip_beside_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        assert_eq!(ListingRecord::load(&state), None);
        let record = ListingRecord {
            tree: "blake3:2".into(),
            entries: vec![entry_hash(&stat("a", 1)), entry_hash(&stat("b", 2))],
        };
        record.save(&state).unwrap();
        assert_eq!(ListingRecord::load(&state), Some(record));
        // A damaged record is no record.
        let path = ListingRecord::path(&state);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(ListingRecord::load(&state), None);
    }
}
