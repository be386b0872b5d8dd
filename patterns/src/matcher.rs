//! An ordered list of patterns: moby patternmatcher's `PatternMatcher`.

use crate::glob::check_glob;
use crate::{clean_path, Pattern, PatternError};

/// Per-pattern results for a directory, handed to its children so that a
/// pattern that matched a parent is not evaluated again (upstream's
/// `MatchInfo`). The default value means "no information": every parent
/// directory of the path is then checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// Dockerignore-style patterns, applied in order: a path matches if the
/// last pattern that matches it (or one of its parent directories) is not a
/// `!` exception.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Parses patterns as upstream's `New` does: each is trimmed (blank ones
    /// are skipped), cleaned like a path, split from a leading `!`, and
    /// checked with Go `filepath.Match` syntax.
    ///
    /// Cleaning happens before the `!` is removed, so `!./x` keeps its `./`
    /// and never matches, exactly as upstream (dockerignore files are
    /// normalised first, see [`crate::read_ignore_file`]).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut out = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let (exclusion, text) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::IllegalExclusion),
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned),
            };
            check_glob(&text)?;
            out.push(Pattern::compile(text, exclusion)?);
        }
        let exclusions = out.iter().any(Pattern::is_exclusion);
        Ok(PatternMatcher {
            patterns: out,
            exclusions,
        })
    }

    /// Whether there are no patterns (nothing matches).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether the slash-separated relative `path` matches, checking each
    /// pattern against the path and all its parent directories (upstream's
    /// `MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> bool {
        self.matches_with_parent(path, &MatchInfo::default()).0
    }

    /// Like [`PatternMatcher::matches`], but reusing `parent`, the
    /// [`MatchInfo`] returned for the path's parent directory, so each
    /// pattern is tested against the path itself only (upstream's
    /// `MatchesUsingParentResults`). Pass `MatchInfo::default()` for a
    /// top-level path or when the parent's result is unknown. Returns the
    /// result and the info to pass to the path's children.
    ///
    /// A `MatchInfo` from another matcher (wrong length) is treated as no
    /// information rather than an error.
    pub fn matches_with_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let known =
            (parent.parent_matched.len() == self.patterns.len()).then_some(&parent.parent_matched);
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known.is_some_and(|k| k[i]);
            if !hit {
                // An inclusion cannot change an already-matched path, nor
                // an exception an unmatched one: skip the evaluation.
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = match known {
                    Some(_) => pattern.matches(path),
                    None => pattern.matches_self_or_parent(path),
                };
            }
            info[i] = hit;
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        (
            matched,
            MatchInfo {
                parent_matched: info,
            },
        )
    }
}
