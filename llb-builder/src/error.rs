//! Why a graph can't be built or marshalled.

/// An error found while building or marshalling a graph. Like BuildKit's Go client, most
/// problems with an op (a bad image reference, a run without arguments) are recorded on the op
/// and reported by [`marshal`](crate::marshal) when a state that depends on it is marshalled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A source op with an empty identifier (or a local source with an empty name).
    #[error("source identifier can't be empty")]
    EmptySourceIdentifier,

    /// An image reference that is not a valid docker reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidImageRef { reference: String, reason: String },

    /// A run with no command: give `run` arguments, or set them on the state.
    #[error("an exec op needs arguments: give run() the command to run")]
    NoArgs,

    /// A command line that `run_shlex` could not split into arguments.
    #[error("cannot split command {command:?} into arguments: {reason}")]
    Shlex { command: String, reason: String },

    /// Image config JSON that could not be parsed.
    #[error("invalid image config: {reason}")]
    InvalidImageConfig { reason: String },

    /// The image metadata resolver failed.
    #[error("cannot resolve the image config of {reference}: {reason}")]
    ResolveImageConfig { reference: String, reason: String },

    /// A state refers to an op the marshaller did not reach (a bug in this crate).
    #[error("internal error while marshalling: {0}")]
    Internal(String),
}
