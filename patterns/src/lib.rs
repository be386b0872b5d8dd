//! Path patterns as BuildKit uses them.
//!
//! - [`PatternMatcher`]: dockerignore-style include/exclude lists with the
//!   semantics of moby's `patternmatcher` (what fsutil and the Dockerfile
//!   frontend use): patterns are cleaned, `!` marks an exception, `*`, `?`
//!   and `[...]` stay within one path component, `**` spans components,
//!   the last matching pattern wins, and a path matches when one of its
//!   parent directories does.
//! - [`glob_match`]: Go's `path/filepath.Match`, for COPY source wildcards.
//! - [`read_ignore_file`]: `.dockerignore` text to patterns.

mod clean;
mod error;
mod glob;
mod ignorefile;
mod matcher;
mod pattern;

pub use clean::clean_path;
pub use error::PatternError;
pub use glob::{contains_wildcards, glob_match};
pub use ignorefile::read_ignore_file;
pub use matcher::{MatchInfo, PatternMatcher};
pub use pattern::Pattern;
