//! The one error type of this crate.
//!
//! Messages follow the text BuildKit produces for the same failure (Go's `os.PathError` style
//! `"<op> <path>: <reason>"`, wrapped with the same context), except that every path is the path
//! as the build sees it inside its root (upstream sometimes leaks the host mount path).

use std::io;

use nix::errno::Errno;

/// Why a file action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileOpError {
    /// A system call failed: `"<op> <path>: <reason>"`, e.g. `mkdir /a/b: file exists`.
    #[error("{op} {path}: {}", go_text(.error))]
    Os {
        /// The failing call as Go names it: "mkdir", "open", "lstat", "symlink", ...
        op: &'static str,
        /// The path inside the root.
        path: String,
        /// The underlying error.
        #[source]
        error: io::Error,
    },

    /// Creating a link failed: `"<op> <old> <new>: <reason>"` (Go's `os.LinkError`).
    #[error("{op} {old} {new}: {}", go_text(.error))]
    Link {
        /// "symlink" or "link".
        op: &'static str,
        /// The link target (a symlink's text, or the existing path of a hard link).
        old: String,
        /// The link being created, inside the root.
        new: String,
        /// The underlying error.
        #[source]
        error: io::Error,
    },

    /// An error with the context upstream adds: `"<context>: <source>"`.
    #[error("{context}: {source}")]
    Context {
        /// What was being done, e.g. `failed to stat /a/b` or `failed to copy files`.
        context: String,
        /// The cause.
        #[source]
        source: Box<FileOpError>,
    },

    /// A wildcard source matched nothing and allowEmptyWildcard was not set.
    #[error("{pattern} not found")]
    NoMatch {
        /// The (cleaned) source pattern.
        pattern: String,
    },

    /// A copy would replace an existing directory with a non-directory.
    #[error("cannot replace to directory {path} with file")]
    ReplaceDirWithFile {
        /// The destination path inside the root.
        path: String,
    },

    /// A copy would put a directory where a non-directory exists.
    #[error("cannot copy to non-directory: {path}")]
    CopyToNonDir {
        /// The destination path inside the root.
        path: String,
    },

    /// modeStr could not be parsed.
    #[error("invalid mode {mode:?}: {reason}")]
    InvalidMode {
        /// The mode string.
        mode: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Include or exclude patterns could not be compiled.
    #[error("invalid {kind}: {patterns:?}: {reason}")]
    InvalidPatterns {
        /// "includepatterns" or "excludepatterns".
        kind: &'static str,
        /// The patterns.
        patterns: Vec<String>,
        /// What is wrong with them.
        reason: String,
    },

    /// A chown user name is not in the passwd file (only with a strict resolver).
    #[error("unknown user {name:?}: no matching entry in /etc/passwd")]
    UnknownUser {
        /// The user name.
        name: String,
    },

    /// A chown group name is not in the group file (only with a strict resolver).
    #[error("unknown group {name:?}: no matching entry in /etc/group")]
    UnknownGroup {
        /// The group name.
        name: String,
    },

    /// The passwd or group file could not be used.
    #[error("{path}: {reason}")]
    UserDatabase {
        /// "/etc/passwd" or "/etc/group".
        path: String,
        /// What went wrong.
        reason: String,
    },

    /// A malformed action or call (missing action, bad user index, ...).
    #[error("{0}")]
    Invalid(String),

    /// An archive extraction would write more than the configured limit.
    #[error("the extraction would write more than the limit of {limit} bytes")]
    ExtractLimit {
        /// The limit, in bytes.
        limit: u64,
    },

    /// The action's build was cancelled while it ran.
    #[error("cancelled")]
    Cancelled,

    /// A feature this implementation does not provide.
    #[error("{what} is not supported")]
    Unsupported {
        /// What is missing.
        what: String,
    },
}

impl FileOpError {
    /// An [`FileOpError::Os`] error.
    pub(crate) fn os(op: &'static str, path: impl Into<String>, error: io::Error) -> Self {
        FileOpError::Os {
            op,
            path: path.into(),
            error,
        }
    }

    /// Wraps `self` with upstream's context text.
    pub(crate) fn context(self, context: impl Into<String>) -> Self {
        FileOpError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The innermost error, below any [`FileOpError::Context`].
    pub fn root_cause(&self) -> &FileOpError {
        match self {
            FileOpError::Context { source, .. } => source.root_cause(),
            other => other,
        }
    }

    /// The errno of the innermost system-call error, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self.root_cause() {
            FileOpError::Os { error, .. } | FileOpError::Link { error, .. } => {
                error.raw_os_error().map(Errno::from_raw)
            }
            _ => None,
        }
    }

    /// Whether the innermost error is "no such file or directory".
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(Errno::ENOENT)
    }

    /// Whether an archive extraction passed its [`crate::Limits::unpack_bytes`].
    pub fn is_extract_limit(&self) -> bool {
        match self {
            FileOpError::ExtractLimit { .. } => true,
            FileOpError::Context { source, .. } => source.is_extract_limit(),
            _ => false,
        }
    }
}

/// The text Go prints for an error: the C library's description in lower case, without
/// Rust's " (os error N)" suffix.
pub(crate) fn go_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match e.raw_os_error() {
        Some(n) => text
            .strip_suffix(&format!(" (os error {n})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if e.raw_os_error().is_some() => c.to_lowercase().chain(chars).collect(),
        _ => text,
    }
}

/// An `io::Error` from an errno.
pub(crate) fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}
