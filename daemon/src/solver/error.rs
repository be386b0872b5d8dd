use crate::worker::WorkerError;

/// Why a build failed, worded for the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("{0}")]
    InvalidDefinition(String),
    #[error("{op}: {source}")]
    Worker {
        op: String,
        #[source]
        source: WorkerError,
    },
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    ExitCode { command: String, code: u32 },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Session(String),
    /// A file action failed (BuildKit's wording: "failed to copy: ...").
    #[error("{0}")]
    FileOp(String),
    /// A frontend's own error, as it returned it.
    #[error("{0}")]
    Frontend(String),
    #[error("{0}")]
    Other(String),
    #[error("build cancelled")]
    Cancelled,
    /// A vertex failed; `name` is the vertex's (a frontend maps it back to its source line).
    #[error("{source}")]
    Step {
        name: String,
        #[source]
        source: Box<SolveError>,
    },
}

impl SolveError {
    /// This error as the failure of vertex `name` (cancellation stays cancellation).
    pub fn in_step(self, name: &str) -> SolveError {
        match self {
            SolveError::Cancelled | SolveError::Step { .. } => self,
            source => SolveError::Step {
                name: name.to_string(),
                source: Box::new(source),
            },
        }
    }

    /// The vertex that failed, if the error names one.
    pub fn step(&self) -> Option<&str> {
        match self {
            SolveError::Step { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn worker(op: impl Into<String>, source: WorkerError) -> SolveError {
        match source {
            WorkerError::Cancelled => SolveError::Cancelled,
            source => SolveError::Worker {
                op: op.into(),
                source,
            },
        }
    }
}
