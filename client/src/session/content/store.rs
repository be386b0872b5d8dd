//! One local content store: a directory laid out as containerd's local content store, which
//! is also an OCI image layout's blob area.
//!
//! - `blobs/sha256/<hex>`: committed blobs, read-only, each named by the SHA-256 of its bytes.
//! - `ingest/<sha256 of the ref>/`: one write in progress per ref, kept until it is committed
//!   or aborted so that a writer that lost its stream resumes where it stopped: `ref` (the ref,
//!   for listing; its modification time is when the ingest started), `data` (the bytes so far),
//!   `total` and `expected` (what the writer announced, when it did).
//!
//! Only `sha256:` digests of 64 lower-case hex digits are accepted, so no digest names a path
//! outside `blobs/sha256/`; refs never become paths, only their hash does. At most one writer
//! holds a ref at a time (within this process, as containerd's store).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::error::ContentError;

/// A digest this store can hold: `sha256:` and 64 lower-case hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDigest(String);

impl BlobDigest {
    pub fn parse(text: &str) -> Result<BlobDigest, ContentError> {
        let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if valid {
            Ok(BlobDigest(text.to_string()))
        } else {
            Err(ContentError::InvalidDigest(text.to_string()))
        }
    }

    /// The digest of a finished hash.
    pub fn of(hasher: Sha256) -> BlobDigest {
        BlobDigest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The hex part, the blob's file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored blob's size and when it was written.
#[derive(Clone, Copy, Debug)]
pub struct BlobInfo {
    pub size: u64,
    pub modified: SystemTime,
}

/// The state of one ingest.
#[derive(Clone, Debug)]
pub struct IngestStatus {
    pub reference: String,
    pub offset: u64,
    /// Zero when the writer did not announce one.
    pub total: u64,
    /// Empty when the writer did not announce one.
    pub expected: String,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
}

/// A directory of blobs and ingests.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Refs a writer holds.
    writers: Mutex<HashSet<String>>,
}

impl LocalStore {
    /// A store over `root`; nothing is created until a blob is written.
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            writers: Mutex::new(HashSet::new()),
        }
    }

    pub fn blob_path(&self, digest: &BlobDigest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// The directory of `reference`'s ingest (which may not exist).
    pub fn ingest_dir(&self, reference: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(reference.as_bytes()));
        self.ingest_root().join(name)
    }

    fn ingest_root(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// The stored blob `digest`; BlobNotFound when there is none.
    pub fn info(&self, digest: &BlobDigest) -> Result<BlobInfo, ContentError> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(BlobInfo {
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            Ok(_) => Err(ContentError::BlobNotFound(digest.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::BlobNotFound(digest.to_string()))
            }
            Err(e) => Err(ContentError::io("reading", &path)(e)),
        }
    }

    pub fn contains(&self, digest: &BlobDigest) -> bool {
        self.info(digest).is_ok()
    }

    /// Holds `reference` for one writer until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, reference: &str) -> Result<RefHold, ContentError> {
        if !self.writers().insert(reference.to_string()) {
            return Err(ContentError::Locked(reference.to_string()));
        }
        Ok(RefHold {
            store: Arc::clone(self),
            reference: reference.to_string(),
        })
    }

    fn writers(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set stays consistent whatever panicked while it was held.
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `reference`'s ingest.
    pub fn status(&self, reference: &str) -> Result<IngestStatus, ContentError> {
        read_status(&self.ingest_dir(reference))?
            .ok_or_else(|| ContentError::IngestNotFound(reference.to_string()))
    }

    /// The state of every ingest, in no particular order.
    pub fn statuses(&self) -> Result<Vec<IngestStatus>, ContentError> {
        let root = self.ingest_root();
        let entries = match fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContentError::io("listing", &root)(e)),
        };
        let mut statuses = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ContentError::io("listing", &root))?;
            if let Some(status) = read_status(&entry.path())? {
                statuses.push(status);
            }
        }
        Ok(statuses)
    }

    /// Drops `reference`'s ingest and its data; refused while a writer holds it.
    pub fn abort(self: &Arc<Self>, reference: &str) -> Result<(), ContentError> {
        let _hold = self.hold(reference)?;
        let dir = self.ingest_dir(reference);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::IngestNotFound(reference.to_string()))
            }
            Err(e) => Err(ContentError::io("removing", &dir)(e)),
        }
    }
}

/// A writer's hold on a ref, released when dropped.
#[derive(Debug)]
pub struct RefHold {
    store: Arc<LocalStore>,
    reference: String,
}

impl RefHold {
    pub fn store(&self) -> &Arc<LocalStore> {
        &self.store
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl Drop for RefHold {
    fn drop(&mut self) {
        self.store.writers().remove(&self.reference);
    }
}

/// The status of the ingest in `dir`; None when there is no (complete) ingest there.
fn read_status(dir: &Path) -> Result<Option<IngestStatus>, ContentError> {
    let ref_file = dir.join("ref");
    let reference = match fs::read_to_string(&ref_file) {
        Ok(reference) => reference,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ContentError::io("reading", &ref_file)(e)),
    };
    let started_at = modified(&ref_file);
    let data = dir.join("data");
    let (offset, updated_at) = match fs::metadata(&data) {
        Ok(meta) => (meta.len(), meta.modified().unwrap_or(started_at)),
        Err(_) => (0, started_at),
    };
    let total = read_small(&dir.join("total")).parse().unwrap_or(0);
    let expected = read_small(&dir.join("expected"));
    Ok(Some(IngestStatus {
        reference,
        offset,
        total,
        expected,
        started_at,
        updated_at,
    }))
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A small optional file's text, empty when it is missing or unreadable.
fn read_small(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_sha256_digests_are_accepted() {
        let hex = "a".repeat(64);
        assert!(BlobDigest::parse(&format!("sha256:{hex}")).is_ok());
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("sha256:../../{}", &hex[6..]),
            format!("sha256:{}/x", &hex[2..]),
            hex.clone(),
            String::new(),
        ] {
            assert!(BlobDigest::parse(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_ref_is_held_by_one_writer_at_a_time() {
        let store = Arc::new(LocalStore::new(PathBuf::from("/nonexistent")));
        let hold = store.hold("layer-1").unwrap();
        assert!(matches!(
            store.hold("layer-1"),
            Err(ContentError::Locked(_))
        ));
        assert!(store.hold("layer-2").is_ok());
        drop(hold);
        assert!(store.hold("layer-1").is_ok());
    }
}
