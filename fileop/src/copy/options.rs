//! The settings of one copy action, resolved once.

use nix::sys::time::TimeSpec;
use nodekit_patterns::PatternMatcher;
use nodekit_proto::pb::FileActionCopy;

use super::mode::{ModeSet, ModeSpec};
use crate::error::FileOpError;
use crate::meta::{timestamp, Owner};
use crate::users::{resolve_owner, UserResolver};

/// Mode of directories a copy creates around its destination when no numeric mode is given.
const DEFAULT_DIR_MODE: u32 = 0o755;

/// What every copied entry gets.
pub(crate) struct Options {
    /// Owner of every copied entry and created directory; `None` keeps the source's ids (and
    /// leaves created parent directories to the daemon's user).
    pub owner: Option<Owner>,
    /// atime and mtime of every copied entry; `None` keeps the source's.
    pub ts: Option<TimeSpec>,
    /// Permission override.
    pub mode: Option<ModeSpec>,
    /// Only entries matching these are copied (with the directories leading to them).
    pub include: Option<PatternMatcher>,
    /// Entries matching these are skipped.
    pub exclude: Option<PatternMatcher>,
    /// Replace an existing destination entry of another type instead of failing.
    pub always_replace: bool,
}

impl Options {
    /// Reads the settings of `op`, resolving its owner with `users`.
    pub(crate) fn from_action(
        op: &FileActionCopy,
        users: &dyn UserResolver,
    ) -> Result<Options, FileOpError> {
        let mode = if !op.mode_str.is_empty() {
            let set = ModeSet::parse(&op.mode_str).map_err(|reason| FileOpError::InvalidMode {
                mode: op.mode_str.clone(),
                reason,
            })?;
            Some(ModeSpec::Symbolic(set))
        } else if op.mode != -1 {
            Some(ModeSpec::Octal(op.mode as u32))
        } else {
            None
        };
        Ok(Options {
            owner: resolve_owner(users, op.owner.as_ref())?,
            ts: timestamp(op.timestamp),
            mode,
            include: matcher("includepatterns", &op.include_patterns)?,
            exclude: matcher("excludepatterns", &op.exclude_patterns)?,
            always_replace: op.always_replace_existing_dest_paths,
        })
    }

    /// Mode of directories created around the destination: the numeric mode when given.
    pub(crate) fn dir_mode(&self) -> u32 {
        match &self.mode {
            Some(ModeSpec::Octal(m)) => m & 0o777,
            _ => DEFAULT_DIR_MODE,
        }
    }

    /// Whether the exclude patterns hold `!` exceptions (so excluded directories must still be
    /// walked).
    pub(crate) fn exclusions(&self) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(PatternMatcher::has_exclusions)
    }
}

fn matcher(kind: &'static str, patterns: &[String]) -> Result<Option<PatternMatcher>, FileOpError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    PatternMatcher::new(patterns)
        .map(Some)
        .map_err(|e| FileOpError::InvalidPatterns {
            kind,
            patterns: patterns.to_vec(),
            reason: e.to_string(),
        })
}
