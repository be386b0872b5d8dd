//! Include/exclude decisions during the sender's walk (upstream `filterFS`).

use std::path::Path;

use nodekit_patterns::{MatchInfo, Pattern, PatternMatcher};

use crate::send::follow;
use crate::send::SendOptions;
use crate::SyncError;

/// Characters that make a pattern more than a literal path prefix.
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// The match state of a directory, passed down to its children.
#[derive(Debug, Clone, Default)]
pub(crate) struct DirMatch {
    include: MatchInfo,
    exclude: MatchInfo,
}

/// What to do with one walked entry.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Send it (and any parent directories not yet sent).
    Emit(DirMatch),
    /// Do not send it, but walk into it if it is a directory: a descendant
    /// may still be included.
    Hide(DirMatch),
    /// Neither send it nor walk into it.
    Prune,
}

/// Compiled include and exclude patterns.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    /// Every include pattern is a literal path (maybe with a trailing glob),
    /// so a non-matching directory that no pattern points into can be pruned.
    only_prefix_includes: bool,
    /// Likewise for the `!` exceptions among the exclude patterns.
    only_prefix_exclude_exceptions: bool,
}

impl Filter {
    /// Builds the filter for `root`: `follow_paths` are resolved through
    /// symlinks and added to the include patterns, as upstream does.
    pub(crate) fn from_options(root: &Path, options: &SendOptions) -> Result<Self, SyncError> {
        let mut include = options.include_patterns.clone();
        if !options.follow_paths.is_empty() {
            if let Some(targets) = follow::follow_links(root, &options.follow_paths)? {
                include.extend(targets);
                // `None` means "." is included: no restriction at all.
                include = follow::dedupe_paths(&include).unwrap_or_default();
            }
        }
        Self::new(&include, &options.exclude_patterns)
    }

    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self, SyncError> {
        let include = Some(compile("include", include)?).filter(|m| !m.is_empty());
        let exclude = Some(compile("exclude", exclude)?).filter(|m| !m.is_empty());
        let literal = |m: &Option<PatternMatcher>, exclusions: bool| {
            m.iter()
                .flat_map(|m| m.patterns())
                .filter(|p| p.is_exclusion() == exclusions)
                .all(|p| !without_trailing_glob(p).contains(PATTERN_CHARS))
        };
        Ok(Filter {
            only_prefix_includes: literal(&include, false),
            only_prefix_exclude_exceptions: literal(&exclude, true),
            include,
            exclude,
        })
    }

    /// Decides for `path` (slash-separated, relative to the root) given the
    /// match state of its parent directory.
    pub(crate) fn decide(&self, path: &str, is_dir: bool, parent: &DirMatch) -> Decision {
        let mut hide = false;
        let mut state = DirMatch::default();
        if let Some(include) = &self.include {
            let (matched, info) = include.matches_with_parent(path, &parent.include);
            state.include = info;
            if !matched {
                if is_dir && self.only_prefix_includes && !points_into(include, path, false) {
                    return Decision::Prune;
                }
                hide = true;
            }
        }
        if let Some(exclude) = &self.exclude {
            let (matched, info) = exclude.matches_with_parent(path, &parent.exclude);
            state.exclude = info;
            if matched {
                let prunable = is_dir
                    && self.only_prefix_exclude_exceptions
                    && (!exclude.has_exclusions() || !points_into(exclude, path, true));
                if prunable {
                    return Decision::Prune;
                }
                hide = true;
            }
        }
        if hide {
            Decision::Hide(state)
        } else {
            Decision::Emit(state)
        }
    }
}

fn compile(which: &'static str, patterns: &[String]) -> Result<PatternMatcher, SyncError> {
    PatternMatcher::new(patterns).map_err(|source| SyncError::InvalidPattern { which, source })
}

/// The pattern without a trailing `/**` or `/*` (upstream's
/// `patternWithoutTrailingGlob`), to tell whether it can point inside a
/// directory.
fn without_trailing_glob(p: &Pattern) -> &str {
    let t = p.text().strip_suffix("/**").unwrap_or(p.text());
    t.strip_suffix("/*").unwrap_or(t)
}

/// Whether some (exception or plain) pattern names a path inside `dir`.
fn points_into(matcher: &PatternMatcher, dir: &str, exclusions: bool) -> bool {
    let dir_slash = format!("{dir}/");
    matcher
        .patterns()
        .iter()
        .filter(|p| p.is_exclusion() == exclusions)
        .any(|p| format!("{}/", without_trailing_glob(p)).starts_with(&dir_slash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prunes_excluded_dirs_without_exceptions() {
        let f = Filter::new(&[], &strings(&["node_modules"])).unwrap();
        assert!(matches!(
            f.decide("node_modules", true, &DirMatch::default()),
            Decision::Prune
        ));
        assert!(matches!(
            f.decide("src", true, &DirMatch::default()),
            Decision::Emit(_)
        ));
    }

    #[test]
    fn walks_excluded_dirs_with_exceptions_inside() {
        let f = Filter::new(&[], &strings(&["docs", "!docs/keep.md"])).unwrap();
        let Decision::Hide(state) = f.decide("docs", true, &DirMatch::default()) else {
            panic!("docs should be hidden but walked");
        };
        assert!(matches!(
            f.decide("docs/keep.md", false, &state),
            Decision::Emit(_)
        ));
        assert!(matches!(
            f.decide("docs/other.md", false, &state),
            Decision::Hide(_)
        ));
        assert!(matches!(
            f.decide("other", true, &DirMatch::default()),
            Decision::Emit(_)
        ));
    }

    #[test]
    fn includes_prune_unrelated_dirs() {
        let f = Filter::new(&strings(&["src/app"]), &[]).unwrap();
        assert!(matches!(
            f.decide("docs", true, &DirMatch::default()),
            Decision::Prune
        ));
        let Decision::Hide(state) = f.decide("src", true, &DirMatch::default()) else {
            panic!("src leads to an include");
        };
        assert!(matches!(
            f.decide("src/app", true, &state),
            Decision::Emit(_)
        ));
        assert!(matches!(f.decide("src/lib", true, &state), Decision::Prune));
    }
}
