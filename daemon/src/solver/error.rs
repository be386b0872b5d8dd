use std::sync::Arc;

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
    /// `note`: more the daemon knows (the disk was full), with its separator, or empty.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}{note}")]
    ExitCode {
        command: String,
        code: u32,
        note: String,
    },
    #[error("{0}")]
    Unsupported(String),
    /// An entitlement the build was not granted.
    #[error("{0}")]
    NotAllowed(String),
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
    /// An error several builds share (the single flight of a vertex or cache key): each build
    /// gets the same error, kind and all.
    #[error(transparent)]
    Shared(Arc<SolveError>),
    /// A vertex failed; `name` is the vertex's (a frontend maps it back to its source line).
    #[error("{source}")]
    Step {
        name: String,
        #[source]
        source: Box<SolveError>,
    },
    /// An error a frontend placed in its source file (`Dockerfile:3: ...`); clients show the
    /// lines around it.
    #[error("{}:{}: {source}", location.file, location.start_line)]
    Located {
        location: SourceLocation,
        #[source]
        source: Box<SolveError>,
    },
    /// A client-side frontend's error, as it returned it (its code and typed details too).
    #[error("{}", .0.message)]
    Returned(nodekit_proto::google::rpc::Status),
}

/// Where in a frontend's source file an error is.
#[derive(Clone, Debug)]
pub struct SourceLocation {
    pub file: String,
    pub start_line: usize,
    pub end_line: usize,
    /// The file's text; None until the frontend adds it (see [`SolveError::with_source_text`]).
    pub text: Option<Arc<str>>,
}

impl SolveError {
    /// The error a shared future ended with, for one of the builds waiting for it: the error
    /// itself if this build was the last to wait, else a shared handle on it. A handle on a
    /// handle is the inner handle: an error passed down a chain of N vertices was nested N
    /// deep, and showing it overflowed the stack (a chain of 10,000 ops).
    pub fn from_shared(error: Arc<SolveError>) -> SolveError {
        match Arc::try_unwrap(error) {
            Ok(error) => error,
            Err(shared) => match &*shared {
                SolveError::Shared(inner) => SolveError::Shared(inner.clone()),
                _ => SolveError::Shared(shared),
            },
        }
    }

    /// The error behind any sharing or placing: what decides its kind (its gRPC code, its
    /// step).
    pub fn underlying(&self) -> &SolveError {
        match self {
            SolveError::Shared(shared) => shared.underlying(),
            SolveError::Located { source, .. } => source.underlying(),
            other => other,
        }
    }

    /// `source` placed at `line` of `file`.
    pub fn located(file: &str, line: usize, source: SolveError) -> SolveError {
        SolveError::Located {
            location: SourceLocation {
                file: file.to_string(),
                start_line: line,
                end_line: line,
                text: None,
            },
            source: Box::new(source),
        }
    }

    /// Gives a placed error in `file` the file's text (what clients print the lines from).
    pub fn with_source_text(self, file: &str, text: &Arc<str>) -> SolveError {
        match self {
            SolveError::Located {
                mut location,
                source,
            } if location.file == file => {
                location.text.get_or_insert_with(|| text.clone());
                SolveError::Located { location, source }
            }
            other => other,
        }
    }

    /// Where the error is in a frontend's source, if it was placed.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            SolveError::Located { location, .. } => Some(location),
            SolveError::Shared(shared) => shared.location(),
            _ => None,
        }
    }

    /// This error as the failure of vertex `name` (cancellation stays cancellation).
    pub fn in_step(self, name: &str) -> SolveError {
        match self.underlying() {
            SolveError::Cancelled | SolveError::Step { .. } => self,
            _ => SolveError::Step {
                name: name.to_string(),
                source: Box::new(self),
            },
        }
    }

    /// The vertex that failed, if the error names one.
    pub fn step(&self) -> Option<&str> {
        match self.underlying() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_shared_between_builds_keeps_its_kind_and_step() {
        let failed = SolveError::Unsupported("no such op".into()).in_step("RUN x");
        let shared = Arc::new(failed);
        let other_build = shared.clone();
        let first = SolveError::from_shared(shared);
        assert!(matches!(first, SolveError::Shared(_)), "{first:?}");
        assert_eq!(first.step(), Some("RUN x"));
        assert_eq!(first.to_string(), "no such op");
        let SolveError::Step { source, .. } = first.underlying() else {
            panic!("not a step error: {first:?}");
        };
        assert!(matches!(**source, SolveError::Unsupported(_)));
        assert!(matches!(
            SolveError::from_shared(other_build).in_step("outer").underlying(),
            SolveError::Step { name, .. } if name == "RUN x"
        ));
        let cancelled = SolveError::from_shared(Arc::new(SolveError::Cancelled));
        assert!(
            matches!(cancelled, SolveError::Cancelled),
            "the last waiter gets it whole"
        );
    }

    #[test]
    fn an_error_passed_down_a_long_chain_stays_shallow() {
        let mut error = Arc::new(SolveError::Other("the first vertex failed".into()));
        let mut held = Vec::new();
        for _ in 0..100_000 {
            held.push(error.clone());
            error = Arc::new(SolveError::from_shared(error));
        }
        let SolveError::Shared(inner) = &*error else {
            panic!("not shared: {error:?}");
        };
        assert!(matches!(**inner, SolveError::Other(_)), "one level deep");
        assert_eq!(error.to_string(), "the first vertex failed");
    }
}
