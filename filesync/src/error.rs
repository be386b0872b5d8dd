//! The crate's single error type.

use std::path::{Path, PathBuf};

/// Everything that can make a sync fail. Messages name the offending path
/// (the wire path for received entries, the local path otherwise).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A received path is absolute, unclean, escapes with `..`, is empty...
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// Entries did not arrive in fsutil walk order (or a path was repeated).
    #[error("entries out of order: {path:?} came after {previous:?}")]
    OutOfOrder { path: String, previous: String },

    /// An entry arrived before (or without) its parent directory.
    #[error("parent directory of {path:?} was not listed before it")]
    MissingParent { path: String },

    /// An entry's parent was listed, but not as a directory (e.g. a symlink).
    #[error("parent {parent:?} of {path:?} is not a directory")]
    ParentNotDirectory { path: String, parent: String },

    /// A hardlink does not point to an earlier regular-file entry.
    #[error("hardlink {path:?} points to {target:?}, which is not an earlier regular file")]
    InvalidHardlink { path: String, target: String },

    /// A stat whose mode names a file type this crate does not create.
    #[error("unsupported file type for {path:?} (Go file mode {mode:#x})")]
    UnsupportedType { path: String, mode: u32 },

    /// A stat whose fields contradict each other.
    #[error("invalid stat for {path:?}: {reason}")]
    InvalidStat { path: String, reason: String },

    /// The peer broke the DiffCopy packet protocol.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// DATA arrived for an ID that was never requested (or already finished).
    #[error("DATA for file id {id}, which was not requested")]
    UnrequestedData { id: u32 },

    /// The sender reported an error (an ERR packet).
    #[error("error from sender: {0}")]
    FromSender(String),

    /// The receiver reported an error (an ERR packet).
    #[error("error from receiver: {0}")]
    FromReceiver(String),

    /// The underlying stream failed.
    #[error("transport error: {0}")]
    Transport(String),

    /// The peer closed the stream too early.
    #[error("connection closed {0}")]
    Closed(&'static str),

    /// A filesystem operation failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An include/exclude/follow pattern could not be parsed.
    #[error("invalid {which} pattern: {source}")]
    InvalidPattern {
        which: &'static str,
        #[source]
        source: nodekit_patterns::PatternError,
    },

    /// A local name cannot be carried by the wire protocol (paths are UTF-8 strings).
    #[error(
        "path {} is not valid UTF-8 and cannot be sent (BuildKit's wire carries UTF-8 paths): rename it, or leave it out with .dockerignore",
        path.display()
    )]
    NonUtf8Path { path: PathBuf },

    /// Options that cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// A bug or a panicked worker thread.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SyncError {
    /// Builds an [`SyncError::Io`] from any error convertible to `io::Error`
    /// (including `nix::Error`).
    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<Path>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        SyncError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source: source.into(),
        }
    }

    /// A closure for `map_err` that wraps an OS error with the operation and path.
    pub(crate) fn io_with<E: Into<std::io::Error>>(
        op: &'static str,
        path: impl AsRef<Path>,
    ) -> impl FnOnce(E) -> Self {
        let path = path.as_ref().to_path_buf();
        move |e| SyncError::Io {
            op,
            path,
            source: e.into(),
        }
    }

    /// Whether the peer should be told about this error with an ERR packet.
    /// Errors that came from the peer or from the broken stream are not echoed.
    pub(crate) fn should_notify_peer(&self) -> bool {
        !matches!(
            self,
            SyncError::FromSender(_)
                | SyncError::FromReceiver(_)
                | SyncError::Transport(_)
                | SyncError::Closed(_)
        )
    }
}
