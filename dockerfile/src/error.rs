//! Error and warning types shared by the parser, the instruction layer and
//! the shell-word engine.

use std::fmt;

/// A Dockerfile syntax or validation error, located at a 1-based line.
///
/// `Display` renders `Dockerfile:LINE: message`; callers that know the real
/// file name can format `line` and `message` themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line where the offending instruction (or directive) starts.
    pub line: usize,
    /// Upstream-compatible message, without location prefix.
    pub message: String,
}

impl ParseError {
    /// Builds an error at `line` with `message`.
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dockerfile:{}: {}", self.line, self.message)
    }
}

/// A non-fatal finding of the parser (upstream prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line the warning refers to.
    pub line: usize,
    /// Human readable text, e.g. `Empty continuation line found in: RUN a b`.
    pub message: String,
}

/// Failure of variable expansion ([`crate::Lexer`]) or of validating an
/// expanded value (e.g. [`crate::MountSpec::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    /// Upstream-compatible message.
    pub message: String,
}

impl ExpandError {
    /// Builds an error from a message.
    pub fn new(message: impl Into<String>) -> Self {
        ExpandError {
            message: message.into(),
        }
    }
}

impl From<String> for ExpandError {
    fn from(message: String) -> Self {
        ExpandError { message }
    }
}

impl From<&str> for ExpandError {
    fn from(message: &str) -> Self {
        ExpandError::new(message)
    }
}
