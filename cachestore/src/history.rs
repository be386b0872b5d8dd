//! Build history: one entry per finished build, kept in the index's redb file beside the cache
//! records (buildkitd keeps them in a `history.db` of its own), and the blobs entries point at
//! (a build's progress log).
//!
//! An entry's record is opaque here (the daemon stores BuildKit's `BuildHistoryRecord`); the
//! store knows only what retention needs: when the build completed and whether it is pinned.
//!
//! | table             | key                 | value                                        |
//! |-------------------|---------------------|----------------------------------------------|
//! | `history`         | build reference     | version ‖ completed ms (u64 LE) ‖ pinned ‖ record |
//! | `history_blobs`   | blob digest         | the blob's bytes, zstd                       |

use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::store::Store;

const HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("history");
const HISTORY_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("history_blobs");

/// The entry encoding this build writes.
const ENTRY_VERSION: u8 = 1;
const HEADER: usize = 1 + 8 + 1;

/// One finished build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub reference: String,
    pub completed_ms: u64,
    pub pinned: bool,
    /// The daemon's record of the build, opaque here.
    pub record: Vec<u8>,
    /// Blobs only this entry uses (deleted with it), by digest.
    pub blobs: Vec<String>,
}

/// How long entries are kept: buildkitd's `[history]` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRetention {
    pub max_age: Duration,
    pub max_entries: usize,
}

impl Default for HistoryRetention {
    /// buildkitd's defaults when its config has no `[history]` table.
    fn default() -> Self {
        HistoryRetention {
            max_age: Duration::from_secs(48 * 3600),
            max_entries: 50,
        }
    }
}

impl HistoryEntry {
    fn encode(&self) -> Vec<u8> {
        let mut blobs = String::new();
        for blob in &self.blobs {
            blobs.push_str(blob);
            blobs.push('\n');
        }
        let mut out = Vec::with_capacity(HEADER + 4 + blobs.len() + self.record.len());
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&self.completed_ms.to_le_bytes());
        out.push(u8::from(self.pinned));
        out.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
        out.extend_from_slice(blobs.as_bytes());
        out.extend_from_slice(&self.record);
        out
    }

    fn decode(reference: &str, bytes: &[u8]) -> Result<HistoryEntry> {
        let corrupt = |reason: &str| Error::CorruptRecord {
            key: format!("history entry {reference}"),
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER + 4 {
            return Err(corrupt("too short"));
        }
        if bytes[0] != ENTRY_VERSION {
            return Err(corrupt(&format!("unknown version {}", bytes[0])));
        }
        let mut completed = [0u8; 8];
        completed.copy_from_slice(&bytes[1..9]);
        let mut blobs_len = [0u8; 4];
        blobs_len.copy_from_slice(&bytes[HEADER..HEADER + 4]);
        let blobs_end = HEADER + 4 + u32::from_le_bytes(blobs_len) as usize;
        let blobs = bytes
            .get(HEADER + 4..blobs_end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| corrupt("bad blob list"))?;
        Ok(HistoryEntry {
            reference: reference.to_string(),
            completed_ms: u64::from_le_bytes(completed),
            pinned: bytes[9] != 0,
            blobs: blobs.lines().map(str::to_string).collect(),
            record: bytes[blobs_end..].to_vec(),
        })
    }
}

/// The references of the entries `retention` removes at `now_ms`, as buildkitd decides: only
/// when there are at least `max_entries` unpinned entries, those beyond the newest
/// `max_entries` that completed more than `max_age` ago.
pub fn expired(entries: &[HistoryEntry], retention: HistoryRetention, now_ms: u64) -> Vec<String> {
    let mut unpinned: Vec<&HistoryEntry> = entries.iter().filter(|e| !e.pinned).collect();
    if unpinned.len() < retention.max_entries {
        return Vec::new();
    }
    unpinned.sort_by_key(|e| std::cmp::Reverse(e.completed_ms));
    let cutoff = now_ms.saturating_sub(retention.max_age.as_millis() as u64);
    unpinned[retention.max_entries..]
        .iter()
        .filter(|e| e.completed_ms < cutoff)
        .map(|e| e.reference.clone())
        .collect()
}

impl Store {
    /// Stores (or replaces) a build's entry, with the blobs it points at.
    pub fn put_history(&self, entry: &HistoryEntry, blobs: &[(String, Vec<u8>)]) -> Result<()> {
        let compressed = blobs
            .iter()
            .map(|(digest, bytes)| Ok((digest, zstd::bulk::compress(bytes, 3)?)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::Encode {
                key: format!("history entry {}", entry.reference),
                reason: e.to_string(),
            })?;
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(HISTORY)?;
            table.insert(entry.reference.as_str(), entry.encode().as_slice())?;
            let mut table = txn.open_table(HISTORY_BLOBS)?;
            for (digest, bytes) in &compressed {
                table.insert(digest.as_str(), bytes.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every stored entry.
    pub fn history(&self) -> Result<Vec<HistoryEntry>> {
        let txn = self.db().begin_read()?;
        let table = match txn.open_table(HISTORY) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for item in table.iter()? {
            let (key, value) = item?;
            out.push(HistoryEntry::decode(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// The entry of build `reference`.
    pub fn history_entry(&self, reference: &str) -> Result<Option<HistoryEntry>> {
        let txn = self.db().begin_read()?;
        let table = match txn.open_table(HISTORY) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let entry = table.get(reference)?;
        entry
            .map(|value| HistoryEntry::decode(reference, value.value()))
            .transpose()
    }

    /// Removes build `reference`'s entry and its blobs; whether it was there.
    pub fn delete_history(&self, reference: &str) -> Result<bool> {
        let txn = self.begin_write()?;
        let found = {
            let mut table = txn.open_table(HISTORY)?;
            let removed = table.remove(reference)?;
            let entry = removed
                .map(|value| HistoryEntry::decode(reference, value.value()))
                .transpose()?;
            if let Some(entry) = &entry {
                let mut blobs = txn.open_table(HISTORY_BLOBS)?;
                for digest in &entry.blobs {
                    blobs.remove(digest.as_str())?;
                }
            }
            entry.is_some()
        };
        txn.commit()?;
        Ok(found)
    }

    /// A blob an entry points at, decompressed.
    pub fn history_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db().begin_read()?;
        let table = match txn.open_table(HISTORY_BLOBS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(value) = table.get(digest)? else {
            return Ok(None);
        };
        let bytes = zstd::stream::decode_all(value.value()).map_err(|e| Error::CorruptRecord {
            key: format!("history blob {digest}"),
            reason: e.to_string(),
        })?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: &str, completed_ms: u64, pinned: bool) -> HistoryEntry {
        HistoryEntry {
            reference: reference.into(),
            completed_ms,
            pinned,
            record: reference.as_bytes().to_vec(),
            blobs: vec![format!("sha256:{reference}")],
        }
    }

    #[test]
    fn entries_round_trip_through_the_store_with_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("index.redb")).unwrap();
        assert!(store.history().unwrap().is_empty());
        let first = entry("b1", 10, false);
        store
            .put_history(&first, &[("sha256:b1".into(), b"log".to_vec())])
            .unwrap();
        assert_eq!(store.history().unwrap(), vec![first.clone()]);
        assert_eq!(store.history_entry("b1").unwrap(), Some(first));
        assert_eq!(
            store.history_blob("sha256:b1").unwrap(),
            Some(b"log".to_vec())
        );
        assert!(store.delete_history("b1").unwrap());
        assert!(!store.delete_history("b1").unwrap());
        assert_eq!(store.history_blob("sha256:b1").unwrap(), None);
        assert!(store.history().unwrap().is_empty());
    }

    #[test]
    fn entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let kept = entry("b1", 10, true);
        Store::open(&path).unwrap().put_history(&kept, &[]).unwrap();
        assert_eq!(Store::open(&path).unwrap().history().unwrap(), vec![kept]);
    }

    #[test]
    fn expiry_needs_both_too_many_entries_and_too_old_ones() {
        let hour = 3_600_000;
        let retention = HistoryRetention {
            max_age: Duration::from_secs(3600),
            max_entries: 2,
        };
        let now = 10 * hour;
        let entries = vec![
            entry("new", now, false),
            entry("recent", now - hour / 2, false),
            entry("old", now - 3 * hour, false),
            entry("older-but-pinned", now - 5 * hour, true),
            entry("oldest", now - 4 * hour, false),
        ];
        let mut gone = expired(&entries, retention, now);
        gone.sort();
        assert_eq!(gone, vec!["old".to_string(), "oldest".to_string()]);
        // Beyond the count but young: kept.
        let young = &entries[..2];
        let strict = HistoryRetention {
            max_entries: 1,
            ..retention
        };
        assert!(expired(young, strict, now).is_empty());
        // Old, but not more entries than allowed: kept.
        assert!(expired(&entries[2..3], retention, now).is_empty());
    }

    #[test]
    fn a_damaged_entry_is_reported() {
        assert!(HistoryEntry::decode("x", &[1, 2]).is_err());
        assert!(HistoryEntry::decode("x", &[9; 20]).is_err());
    }
}
