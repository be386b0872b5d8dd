//! The crate's error type. Every failure of the index (an unreadable, corrupt or truncated file, a
//! record that does not decode, a bad filter or GC setting) is an [`Error`], never a panic.

use std::path::PathBuf;

/// What went wrong in the cache index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The index file could not be opened (missing directory, permissions, not a redb file,
    /// truncated or corrupt header, or another process holds it).
    #[error("cannot open the cache index {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// The index file is damaged in a way redb itself did not catch.
    #[error("the cache index {path} is corrupt: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    /// The file was written by a schema this build does not read.
    #[error("the cache index {path} has schema v{found}; this nodekit reads v{supported} (move the file away to start an empty cache)")]
    Schema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    /// A read or write of the index failed.
    #[error("cache index: {0}")]
    Db(#[from] redb::Error),
    /// A stored record does not decode.
    #[error("cache index: record {key} is corrupt: {reason}")]
    CorruptRecord { key: String, reason: String },
    /// A record could not be encoded.
    #[error("cache index: cannot encode record {key}: {reason}")]
    Encode { key: String, reason: String },
    /// A filter as buildctl sends it (`type==regular`) does not parse.
    #[error("invalid filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    /// A GC setting (`keepDuration`, `reservedSpace`, ...) does not parse.
    #[error("invalid {field} {value:?}: {reason}")]
    Setting {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// A hex cache key does not parse.
    #[error("invalid cache key {0:?}: want 64 hex digits")]
    Key(String),
    /// A tree could not be walked or a file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A pre-walked tree is not a tree (a path without its parent, a duplicate, a bad name).
    #[error("invalid tree entry {path:?}: {reason}")]
    Tree { path: String, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);
