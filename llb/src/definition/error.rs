//! Why a definition was rejected.

use crate::digest::short;

/// A definition that can't be loaded. Every message starts with "LLB definition is malformed"
/// and, for a problem in one op, names it by position in `def` and (shortened) digest, then the
/// field and what is wrong with it. The variants carry the full digests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlbError {
    /// `def` has no entries. (A solve request with no ops means "empty result" upstream; see
    /// [`load_or_empty`](super::load_or_empty).)
    #[error("LLB definition is malformed: it has no ops")]
    Empty,

    /// `def[index]` is not a valid protobuf `pb.Op`.
    #[error(
        "LLB definition is malformed: op {index} ({}) is not a valid pb.Op: {reason}",
        short(digest)
    )]
    Decode {
        index: usize,
        digest: String,
        reason: String,
    },

    /// One field of one op is wrong.
    #[error(
        "LLB definition is malformed: op {index} ({}) {field} {problem}",
        short(digest)
    )]
    Op {
        index: usize,
        digest: String,
        field: String,
        problem: String,
    },

    /// Ops depend on each other in a loop (only possible with forged digests).
    #[error("LLB definition is malformed: ops form a cycle: {}", cycle_text(path))]
    Cycle {
        /// (position in `def`, digest) of each op on the loop, the first repeated at the end.
        path: Vec<(usize, String)>,
    },
}

fn cycle_text(path: &[(usize, String)]) -> String {
    let steps: Vec<String> = path
        .iter()
        .map(|(index, digest)| format!("op {index} ({})", short(digest)))
        .collect();
    steps.join(" -> ")
}

/// Where in the definition a problem is: builds [`LlbError::Op`] values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpAt<'a> {
    pub index: usize,
    pub digest: &'a str,
}

impl OpAt<'_> {
    pub fn error(&self, field: impl Into<String>, problem: impl Into<String>) -> LlbError {
        LlbError::Op {
            index: self.index,
            digest: self.digest.to_string(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}
