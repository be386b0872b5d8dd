//! Errors of the containerd worker, worded for the person running the build.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("containerd is unreachable at {socket}: {reason} (is containerd running, and is --containerd-worker-addr right?)")]
    Unreachable { socket: PathBuf, reason: String },

    #[error("containerd {operation} failed: {}", describe(status))]
    Containerd {
        operation: String,
        status: Box<tonic::Status>,
    },

    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error(
        "image {reference} not found in namespace {namespace} and could not be pulled: {reason}"
    )]
    ImageUnavailable {
        reference: String,
        namespace: String,
        reason: String,
    },

    #[error("image {reference} has no manifest for platform {platform} (it offers: {available})")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    #[error("image {reference} is malformed: {reason}")]
    MalformedImage { reference: String, reason: String },

    #[error("registry error for {reference}: {reason}")]
    Registry { reference: String, reason: String },

    /// The registry wants credentials nodekitd did not have, or refused the ones it sent
    /// (`reason` names the registry and where the credentials came from).
    #[error("{operation} {reference}: unauthorized (401): {reason}")]
    Unauthorized {
        operation: RegistryOperation,
        reference: String,
        reason: String,
    },

    #[error("unknown user {user:?}: {reason}")]
    UnknownUser { user: String, reason: String },

    #[error("process could not run: {0}")]
    Exec(String),

    #[error("the step was cancelled")]
    Cancelled,

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// A containerd status for a person. An unreachable containerd's message says all (the
/// worker's channel words it, naming the socket), and so does an Unknown one (containerd's own
/// error, e.g. "write PATH: no space left on device"); any other keeps its code.
fn describe(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown => status.message().to_string(),
        _ => status.to_string(),
    }
}

/// What nodekitd was doing when a registry refused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryOperation {
    Pull,
    Push,
}

impl std::fmt::Display for RegistryOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegistryOperation::Pull => "pulling",
            RegistryOperation::Push => "pushing",
        })
    }
}

impl WorkerError {
    pub fn containerd(operation: impl Into<String>, status: tonic::Status) -> Self {
        WorkerError::Containerd {
            operation: operation.into(),
            status: Box::new(status),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        WorkerError::Io {
            context: context.into(),
            source,
        }
    }
}

/// `Result` of the worker.
pub type WorkerResult<T> = Result<T, WorkerError>;

/// Maps a containerd call's `tonic::Status` into a [`WorkerError`] naming the operation.
pub trait StatusExt<T> {
    fn op(self, operation: &str) -> WorkerResult<T>;
    /// Like [`StatusExt::op`], with containerd's NotFound as `None`.
    fn op_optional(self, operation: &str) -> WorkerResult<Option<T>>;
}

impl<T> StatusExt<T> for Result<tonic::Response<T>, tonic::Status> {
    fn op(self, operation: &str) -> WorkerResult<T> {
        self.map(tonic::Response::into_inner)
            .map_err(|status| WorkerError::containerd(operation, status))
    }

    fn op_optional(self, operation: &str) -> WorkerResult<Option<T>> {
        match self {
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            other => other.op(operation).map(Some),
        }
    }
}
