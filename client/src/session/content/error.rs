//! What can go wrong in a local content store, and the gRPC code each failure travels as: the
//! codes containerd's content service uses, since the daemon's writer and reader act on them
//! (AlreadyExists counts as success, Unavailable is retried, NotFound ends an import).

use std::io;
use std::path::{Path, PathBuf};

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A digest that is not `sha256:` and 64 lower-case hex digits: it would name a path
    /// outside `blobs/sha256/`, or a blob this store cannot hold.
    #[error("invalid digest {0:?}: expected sha256: and 64 lower-case hex digits")]
    InvalidDigest(String),
    #[error("content {0}: not found")]
    BlobNotFound(String),
    #[error("ingest ref {0:?}: not found")]
    IngestNotFound(String),
    /// The blob a writer announced is already stored: nothing needs writing.
    #[error("blob with expected digest {0} exists")]
    AlreadyExists(String),
    /// Another writer holds the ref; the daemon retries.
    #[error("ref {0:?} is locked by another writer")]
    Locked(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The written bytes do not make the blob the commit announced.
    #[error("{0}")]
    Precondition(String),
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl ContentError {
    /// An I/O error with what was being done and to which path.
    pub fn io(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContentError {
        let path = path.to_path_buf();
        move |source| ContentError::Io {
            context,
            path,
            source,
        }
    }
}

impl From<ContentError> for Status {
    fn from(error: ContentError) -> Status {
        let message = error.to_string();
        match error {
            ContentError::InvalidDigest(_) | ContentError::InvalidArgument(_) => {
                Status::invalid_argument(message)
            }
            ContentError::BlobNotFound(_) | ContentError::IngestNotFound(_) => {
                Status::not_found(message)
            }
            ContentError::AlreadyExists(_) => Status::already_exists(message),
            ContentError::Locked(_) => Status::unavailable(message),
            ContentError::OutOfRange(_) => Status::out_of_range(message),
            ContentError::Precondition(_) => Status::failed_precondition(message),
            ContentError::Io { .. } => Status::internal(message),
        }
    }
}
