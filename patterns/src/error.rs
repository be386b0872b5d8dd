//! The crate's error type.

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A pattern consisting of `!` alone (an exception of nothing).
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,

    /// A pattern that Go's `filepath.Match` would reject, or a character
    /// class that could never be evaluated.
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as given (for [`crate::PatternMatcher`], cleaned).
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PatternError {
    pub(crate) fn bad(pattern: &str, reason: &'static str) -> Self {
        PatternError::BadPattern {
            pattern: pattern.to_string(),
            reason,
        }
    }
}
