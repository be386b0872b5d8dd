//! The fast path of a repeated sync. A receive that ends well writes, beside the state file,
//! which listing (a digest of every STAT packet, in order) produced which tree. When the caller
//! says `dest` holds that tree and the sender's listing is the same again, nothing on disk has
//! to change: the receiver answers FIN without touching `dest` at all (no lookups, no
//! metadata, no new state), which is most of what an unchanged build context costs.

use std::path::{Path, PathBuf};

use nodekit_proto::fsutil::types::Stat;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::SyncError;

/// At most this many STATs are held back while checking for an unchanged listing; a larger
/// tree goes the ordinary way (its listing is then replayed from memory).
pub(crate) const MAX_HELD: usize = 100_000;

/// A running digest of the STAT packets of a listing.
pub(crate) struct ListingHasher(blake3::Hasher);

impl ListingHasher {
    pub(crate) fn new() -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"nodekit-filesync-listing-v1\0");
        ListingHasher(hasher)
    }

    pub(crate) fn add(&mut self, stat: &Stat) {
        let bytes = stat.encode_to_vec();
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(&bytes);
    }

    pub(crate) fn finish(&self) -> String {
        format!("blake3:{}", self.0.finalize().to_hex())
    }
}

/// Which listing produced which tree (the summary's digest), as the last good receive saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ListingRecord {
    pub(crate) listing: String,
    pub(crate) tree: String,
}

impl ListingRecord {
    fn path(state_file: &Path) -> PathBuf {
        let mut name = state_file.file_name().unwrap_or_default().to_os_string();
        name.push(".listing");
        state_file.with_file_name(name)
    }

    /// The record beside `state_file`; none if absent or unreadable (it is only a shortcut).
    pub(crate) fn load(state_file: &Path) -> Option<ListingRecord> {
        let bytes = std::fs::read(Self::path(state_file)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Replaces the record (temporary file, then rename: a reader sees the old or the new).
    pub(crate) fn save(&self, state_file: &Path) -> Result<(), SyncError> {
        let path = Self::path(state_file);
        let json = serde_json::to_vec(self).map_err(|e| SyncError::io("encode", &path, e))?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, json).map_err(SyncError::io_with("write", &tmp))?;
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
    fn the_listing_digest_follows_every_field_and_the_order() {
        let digest = |stats: &[Stat]| {
            let mut h = ListingHasher::new();
            stats.iter().for_each(|s| h.add(s));
            h.finish()
        };
        let base = digest(&[stat("a", 1), stat("b", 2)]);
        assert_eq!(base, digest(&[stat("a", 1), stat("b", 2)]));
        assert_ne!(base, digest(&[stat("b", 2), stat("a", 1)]));
        assert_ne!(base, digest(&[stat("a", 1), stat("b", 3)]));
        assert_ne!(base, digest(&[stat("a", 1)]));
    }

    #[test]
    fn records_round_trip_beside_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        assert_eq!(ListingRecord::load(&state), None);
        let record = ListingRecord {
            listing: "blake3:1".into(),
            tree: "blake3:2".into(),
        };
        record.save(&state).unwrap();
        assert_eq!(ListingRecord::load(&state), Some(record));
    }
}
