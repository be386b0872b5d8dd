//! The `index.json` of a local cache directory, kept as buildctl keeps it (an OCI image
//! layout): after a build that exported cache to `type=local,dest=DIR`, the client points a
//! tag at the cache manifest the daemon wrote; before a build that imports from
//! `type=local,src=DIR`, it looks the tag up to tell the daemon which manifest to read.
//!
//! - [`StoreIndex::put`] writes `oci-layout`, reads (or starts) `index.json` with
//!   `schemaVersion` 2 and the OCI index media type, drops the entries tagged the same that
//!   carry no image name (`io.containerd.image.name`), and appends the descriptor with the
//!   tag as `org.opencontainers.image.ref.name`.
//! - [`StoreIndex::get`] finds a tag as an image name first, then as a ref name.
//!
//! Both hold `index.json.lock` (flock; exclusive to write, shared to read) and fail at once
//! when another process holds it, then remove the lock file. A read-only directory is read
//! without the lock. Fields nodekit does not know are kept as they were.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The tag of an index entry (the OCI annotation).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name of an index entry (containerd's annotation); tags carry none.
pub const IMAGE_NAME: &str = "io.containerd.image.name";
/// The media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The content of `oci-layout`.
const LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("could not lock {}", .0.display())]
    Busy(PathBuf),
    #[error("could not lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("could not parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("a cache tag cannot be empty")]
    EmptyTag,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IndexError {
    let path = path.to_path_buf();
    move |source| IndexError::Io {
        action,
        path,
        source,
    }
}

/// An OCI content descriptor; fields other than these are kept as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Descriptor {
    fn annotation(&self, key: &str) -> &str {
        self.annotations.get(key).map(String::as_str).unwrap_or("")
    }
}

/// An OCI image index; fields other than these are kept as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Index {
    /// Points `tag` at `descriptor`: entries with the same tag and no image name go.
    pub fn insert_tagged(&mut self, descriptor: &Descriptor, tag: &str) {
        let mut entry = descriptor.clone();
        entry.annotations.insert(REF_NAME.into(), tag.into());
        self.manifests
            .retain(|m| m.annotation(REF_NAME) != tag || !m.annotation(IMAGE_NAME).is_empty());
        self.manifests.push(entry);
    }

    /// The entry named `tag`: by image name first, then by ref name.
    pub fn find(&self, tag: &str) -> Option<&Descriptor> {
        let by = |key| {
            self.manifests
                .iter()
                .find(move |m| m.annotation(key) == tag)
        };
        by(IMAGE_NAME).or_else(|| by(REF_NAME))
    }

    fn set_defaults(&mut self) {
        if self.schema_version == 0 {
            self.schema_version = 2;
        }
        if self.media_type.is_empty() {
            self.media_type = INDEX_MEDIA_TYPE.into();
        }
    }
}

/// The index of one OCI layout directory.
#[derive(Clone, Debug)]
pub struct StoreIndex {
    dir: PathBuf,
}

impl StoreIndex {
    pub fn new(dir: impl Into<PathBuf>) -> StoreIndex {
        StoreIndex { dir: dir.into() }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("index.json.lock")
    }

    /// Tags `descriptor` as `tag` in `index.json`, writing `oci-layout` too.
    pub fn put(&self, descriptor: &Descriptor, tag: &str) -> Result<(), IndexError> {
        if tag.is_empty() {
            return Err(IndexError::EmptyTag);
        }
        fs::create_dir_all(&self.dir).map_err(io_error("create", &self.dir))?;
        let _lock = Lock::exclusive(self.lock_path())?;
        let layout = self.dir.join("oci-layout");
        fs::write(&layout, LAYOUT).map_err(io_error("write", &layout))?;
        let mut index = self.read_unlocked(true)?;
        index.set_defaults();
        index.insert_tagged(descriptor, tag);
        self.write_unlocked(&index)
    }

    /// The descriptor tagged `tag`; an error when there is no readable `index.json`.
    pub fn get(&self, tag: &str) -> Result<Option<Descriptor>, IndexError> {
        if tag.is_empty() {
            return Err(IndexError::EmptyTag);
        }
        Ok(self.read()?.find(tag).cloned())
    }

    /// `index.json` as it is.
    pub fn read(&self) -> Result<Index, IndexError> {
        let _lock = Lock::shared(self.lock_path())?;
        self.read_unlocked(false)
    }

    /// Reads `index.json`; a missing or empty one is an empty index when `may_be_new`.
    fn read_unlocked(&self, may_be_new: bool) -> Result<Index, IndexError> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if may_be_new && e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error("read", &path)(e)),
        };
        if may_be_new && bytes.is_empty() {
            return Ok(Index::default());
        }
        serde_json::from_slice(&bytes).map_err(|source| IndexError::Parse { path, source })
    }

    /// Replaces `index.json` at once (a new file renamed over it).
    fn write_unlocked(&self, index: &Index) -> Result<(), IndexError> {
        let path = self.index_path();
        let bytes = serde_json::to_vec(index).map_err(|source| IndexError::Parse {
            path: path.clone(),
            source,
        })?;
        let staged = self.dir.join("index.json.new");
        fs::write(&staged, bytes).map_err(io_error("write", &staged))?;
        fs::rename(&staged, &path).map_err(io_error("write", &path))
    }
}

/// A flock on the lock file, released and the file removed when dropped.
struct Lock {
    path: PathBuf,
    /// None when the directory is read-only and the index is read without a lock.
    file: Option<File>,
}

impl Lock {
    fn exclusive(path: PathBuf) -> Result<Lock, IndexError> {
        let file = open_lock_file(&path).map_err(|source| IndexError::Lock {
            path: path.clone(),
            source,
        })?;
        Lock::take(path, file, File::try_lock)
    }

    fn shared(path: PathBuf) -> Result<Lock, IndexError> {
        match open_lock_file(&path) {
            Ok(file) => Lock::take(path, file, File::try_lock_shared),
            Err(e) if cannot_write(&e) => Ok(Lock { path, file: None }),
            Err(source) => Err(IndexError::Lock { path, source }),
        }
    }

    fn take(
        path: PathBuf,
        file: File,
        try_lock: fn(&File) -> Result<(), TryLockError>,
    ) -> Result<Lock, IndexError> {
        match try_lock(&file) {
            Ok(()) => Ok(Lock {
                path,
                file: Some(file),
            }),
            Err(TryLockError::WouldBlock) => Err(IndexError::Busy(path)),
            Err(TryLockError::Error(source)) => Err(IndexError::Lock { path, source }),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.unlock();
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The directory refuses new files: a read goes on without the lock, as buildctl's does.
fn cannot_write(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}
