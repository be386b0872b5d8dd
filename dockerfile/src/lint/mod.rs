//! Dockerfile build checks (upstream `frontend/dockerfile/linter` and the
//! checks spread over `instructions` and `dockerfile2llb`, v0.24).
//!
//! [`lint`] runs every rule that the parsed Dockerfile decides;
//! [`lint_with`] takes what a converter knows on top ([`LintContext`]).
//! The rules that need the converter's state during dispatch are message
//! builders in [`converter`]. [`LintConfig`] (the `# check=` directive)
//! selects the rules, and [`lint_error`] turns the warnings into the build
//! error that `error=true` asks for.
//!
//! # Where upstream runs each rule
//!
//! | rule | when | here |
//! |---|---|---|
//! | StageNameCasing, FromAsCasing, MaintainerDeprecated, InvalidDefinitionDescription (exp.) | parsing, every stage | [`lint`] |
//! | NoEmptyContinuation, DuplicateStageName, ReservedStageName, ConsistentInstructionCasing | after parsing, every stage | [`lint`] |
//! | InvalidDefaultArgInFrom, UndefinedArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed | FROM lines with the global ARGs, every stage | [`lint`] |
//! | LegacyKeyValueFormat, SecretsUsedInArgOrEnv, WorkdirRelativePath, JSONArgsRecommended, MultipleInstructionsDisallowed, ExposeProtoCasing, ExposeInvalidFormat | dispatch, built stages only | [`lint`] (stages chosen by [`LintContext::stages`]) |
//! | UndefinedVar, InvalidBaseImagePlatform, CopyIgnoredFile (exp.) | dispatch, with the stage environment / pulled image / `.dockerignore` | [`converter`] helpers |
//!
//! # Approximations of the dispatch-time rules
//!
//! Upstream checks expanded values with the stage environment, which
//! includes the base image's `Env`. Here a word with a variable reference
//! (WORKDIR path, ENV key, EXPOSE port) is not judged; words without
//! variables are judged after quote removal. A base image outside the
//! Dockerfile is assumed to set no `Shell` (JSONArgsRecommended), and
//! WORKDIR paths are judged with Linux rules. A stage built on an earlier
//! stage inherits its SHELL and "absolute WORKDIR seen" state, as upstream.

mod config;
pub mod converter;
mod from_lines;
mod platform;
mod reference;
pub mod rules;
mod stage_dispatch;
mod static_checks;

use std::collections::{BTreeMap, BTreeSet};

pub use config::{LintConfig, CHECK_BUILD_ARG};
pub use rules::{rule_by_name, Rule, ALL_RULES};

use crate::dockerfile::Dockerfile;

/// One build-check finding (upstream `lint.Warning`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// Rule name, e.g. `StageNameCasing`.
    pub rule: &'static str,
    /// The rule's description (upstream sends it as the warning detail).
    pub description: &'static str,
    /// Documentation URL (empty for `InvalidBaseImagePlatform`).
    pub url: String,
    /// The formatted message, e.g. `Stage name 'Foo' should be lowercase`.
    pub message: String,
    /// First line of the reported range (1-based).
    pub start_line: usize,
    /// Last line of the reported range (1-based).
    pub end_line: usize,
}

impl LintWarning {
    /// Upstream's progress-stream text (`linter.LintFormatShort`):
    /// `Rule: message (line N)`, without the line part when it is 0.
    pub fn short(&self) -> String {
        let mut out = format!("{}: {}", self.rule, self.message);
        if self.start_line > 0 {
            out.push_str(&format!(" (line {})", self.start_line));
        }
        out
    }
}

/// What a converter knows beyond the Dockerfile text.
/// `LintContext::default()` is the view of the text alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintContext {
    /// Predefined ARGs as upstream's `defaultArgs` builds them
    /// (`BUILDPLATFORM`, `BUILDOS`, `BUILDOSVERSION`, `BUILDARCH`,
    /// `BUILDVARIANT`, `TARGETPLATFORM`, `TARGETOS`, `TARGETOSVERSION`,
    /// `TARGETARCH`, `TARGETVARIANT`, `TARGETSTAGE`). `None`: linux/amd64
    /// for build and target, `TARGETSTAGE` the last stage's name (or
    /// `default`). Build args named like these override them either way.
    pub predefined_args: Option<Vec<(String, String)>>,
    /// `build-arg:` values (name without prefix). They replace global ARG
    /// values when FROM lines are expanded (not for
    /// InvalidDefaultArgInFrom, which checks the defaults).
    pub build_args: BTreeMap<String, String>,
    /// Indexes of the stages the build dispatches: the dispatch-time rules
    /// report only for these. `None`: every stage, as upstream's lint
    /// request (or a build with all stages).
    pub stages: Option<BTreeSet<usize>>,
}

/// Runs every rule decidable from `df` on all stages, applies `config`
/// and returns the warnings ordered by line (stable: same-line warnings
/// keep upstream's emission order).
pub fn lint(df: &Dockerfile, config: &LintConfig) -> Vec<LintWarning> {
    lint_with(df, config, &LintContext::default())
}

/// [`lint`] with what the converter knows (see [`LintContext`]).
pub fn lint_with(df: &Dockerfile, config: &LintConfig, ctx: &LintContext) -> Vec<LintWarning> {
    let mut warnings = static_checks::check(df);
    warnings.extend(from_lines::check(df, ctx));
    warnings.extend(stage_dispatch::check(df, ctx));
    finish(warnings, config)
}

/// Drops the warnings of rules `config` disables and orders the rest by
/// line (stable). Useful after merging [`converter`] warnings.
pub fn finish(mut warnings: Vec<LintWarning>, config: &LintConfig) -> Vec<LintWarning> {
    warnings.retain(|w| config.is_enabled(w.rule));
    warnings.sort_by_key(|w| w.start_line);
    warnings
}

/// The build error for `error=true` (upstream `Linter.Error`):
/// `lint violation found for rules: A, B` listing each enabled rule that
/// reported, once, in order of first appearance in `warnings` (upstream's
/// order is that of a Go map, i.e. unspecified). `None` when `error` is
/// off or no enabled rule reported.
pub fn lint_error(warnings: &[LintWarning], config: &LintConfig) -> Option<String> {
    if !config.error {
        return None;
    }
    let mut rules: Vec<&str> = Vec::new();
    for w in warnings.iter().filter(|w| config.is_enabled(w.rule)) {
        if !rules.contains(&w.rule) {
            rules.push(w.rule);
        }
    }
    if rules.is_empty() {
        return None;
    }
    Some(format!(
        "lint violation found for rules: {}",
        rules.join(", ")
    ))
}
