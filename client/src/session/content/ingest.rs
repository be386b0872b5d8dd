//! One write in progress: the bytes of a blob appended to `ingest/<hash>/data`, hashed as they
//! arrive, and moved into `blobs/sha256/` by a commit that checks them.
//!
//! Blocking file I/O: the Write service runs each step on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::error::ContentError;
use super::store::{BlobDigest, RefHold};

/// An open ingest, held for one writer.
#[derive(Debug)]
pub struct Ingest {
    hold: RefHold,
    dir: PathBuf,
    data: File,
    hasher: Sha256,
    offset: u64,
    started_at: SystemTime,
    updated_at: SystemTime,
}

impl Ingest {
    /// Opens the ingest of `hold`'s ref, resuming the bytes a previous writer left, and records
    /// what this writer announced (`total` when positive, `expected` when given).
    pub fn open(
        hold: RefHold,
        total: i64,
        expected: Option<&BlobDigest>,
    ) -> Result<Ingest, ContentError> {
        let dir = hold.store().ingest_dir(hold.reference());
        fs::create_dir_all(&dir).map_err(ContentError::io("creating", &dir))?;
        let ref_file = dir.join("ref");
        if !ref_file.exists() {
            write_small(&ref_file, hold.reference())?;
        }
        if total > 0 {
            write_small(&dir.join("total"), &total.to_string())?;
        }
        if let Some(expected) = expected {
            write_small(&dir.join("expected"), expected.as_str())?;
        }
        let path = dir.join("data");
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(ContentError::io("opening", &path))?;
        let (hasher, offset) =
            hash_existing(&mut data).map_err(ContentError::io("reading", &path))?;
        let started_at = modified(&ref_file);
        Ok(Ingest {
            hold,
            dir,
            data,
            hasher,
            offset,
            started_at,
            updated_at: modified(&path),
        })
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> BlobDigest {
        BlobDigest::of(self.hasher.clone())
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub fn updated_at(&self) -> SystemTime {
        self.updated_at
    }

    /// Drops everything written: the writer starts over.
    pub fn restart(&mut self) -> Result<(), ContentError> {
        let path = self.dir.join("data");
        self.data
            .set_len(0)
            .and_then(|()| self.data.seek(SeekFrom::Start(0)).map(drop))
            .map_err(ContentError::io("truncating", &path))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        self.updated_at = SystemTime::now();
        Ok(())
    }

    /// Appends `bytes` at the current offset.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), ContentError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.dir.join("data");
        self.data
            .write_all(bytes)
            .map_err(ContentError::io("writing", &path))?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        self.updated_at = SystemTime::now();
        Ok(())
    }

    /// Stores the bytes as a blob when they are `total` bytes long (if positive) and hash to
    /// `expected` (if given), and removes the ingest. A refused commit removes the ingest too:
    /// bytes that do not make the announced blob are not worth resuming.
    pub fn commit(
        self,
        total: i64,
        expected: Option<&BlobDigest>,
    ) -> Result<BlobDigest, ContentError> {
        let digest = self.digest();
        let checked = self.check(total, expected, &digest);
        let result = checked.and_then(|()| self.store_blob(&digest));
        let removed = fs::remove_dir_all(&self.dir);
        result?;
        removed.map_err(ContentError::io("removing", &self.dir))?;
        Ok(digest)
    }

    /// Removes the ingest and its data.
    pub fn discard(self) {
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(%error, dir = %self.dir.display(), "removing an ingest failed");
        }
    }

    fn check(
        &self,
        total: i64,
        expected: Option<&BlobDigest>,
        digest: &BlobDigest,
    ) -> Result<(), ContentError> {
        if total > 0 && self.offset != total as u64 {
            return Err(ContentError::Precondition(format!(
                "unexpected commit size {}, expected {total}",
                self.offset
            )));
        }
        match expected {
            Some(expected) if expected != digest => Err(ContentError::Precondition(format!(
                "unexpected commit digest {digest}, expected {expected}"
            ))),
            _ => Ok(()),
        }
    }

    /// Moves the data into `blobs/sha256/`, synced first and read-only after: a reader never
    /// sees a partial blob.
    fn store_blob(&self, digest: &BlobDigest) -> Result<(), ContentError> {
        let store = self.hold.store();
        if store.contains(digest) {
            return Err(ContentError::AlreadyExists(digest.to_string()));
        }
        let source = self.dir.join("data");
        self.data
            .sync_all()
            .map_err(ContentError::io("syncing", &source))?;
        let blobs = store.blobs_dir();
        fs::create_dir_all(&blobs).map_err(ContentError::io("creating", &blobs))?;
        let target = store.blob_path(digest);
        fs::rename(&source, &target).map_err(ContentError::io("storing", &target))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o444))
            .map_err(ContentError::io("protecting", &target))
    }
}

/// The hash and length of what `data` holds, leaving its position at the end.
fn hash_existing(data: &mut File) -> io::Result<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut length = 0u64;
    data.seek(SeekFrom::Start(0))?;
    loop {
        let n = data.read(&mut buffer)?;
        if n == 0 {
            return Ok((hasher, length));
        }
        hasher.update(&buffer[..n]);
        length += n as u64;
    }
}

fn write_small(path: &Path, text: &str) -> Result<(), ContentError> {
    fs::write(path, text).map_err(ContentError::io("writing", path))
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| SystemTime::now())
}
