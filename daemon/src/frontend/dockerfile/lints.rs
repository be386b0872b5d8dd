//! Build checks (BuildKit's Dockerfile linter): the rules `nodekit-dockerfile` decides from the
//! text, plus those the conversion found, reported as build warnings; with `# check=error=true`
//! any warning fails the build before a step runs.

use std::collections::BTreeSet;

use nodekit_dockerfile::{lint, Dockerfile, LintConfig, LintContext, LintWarning};
use nodekit_proto::moby::buildkit::v1::frontend::WarnRequest;
use nodekit_proto::pb;

use super::convert::Converted;
use super::options::Options;
use crate::solver::{Job, SolveError};

/// The build arg that overrides the `# check=` directive, as upstream.
const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// Warning level of lint findings in progress (upstream's).
const LINT_LEVEL: i64 = 1;

/// The lint configuration of this build: the build arg, else the `# check=` directive.
pub fn config(
    dockerfile: &Dockerfile,
    options: &Options,
    file: &str,
) -> Result<LintConfig, SolveError> {
    let directive = dockerfile.directive("check");
    let build_arg = options.build_args.get(CHECK_BUILD_ARG).map(String::as_str);
    LintConfig::from_sources(directive, build_arg)
        .map_err(|e| SolveError::InvalidDefinition(format!("{file}: {e}")))
}

/// What one Dockerfile build tells the linter.
pub struct LintInput<'a> {
    pub dockerfile: &'a Dockerfile,
    pub file: &'a str,
    pub text: &'a str,
    /// The vertex that read the Dockerfile, which clients show the warnings under.
    pub vertex: &'a str,
    pub options: &'a Options,
    pub config: &'a LintConfig,
    pub predefined_args: Vec<(String, String)>,
}

/// Runs the checks over the Dockerfile and the conversions (one per platform), reports each
/// warning once in the build's progress and fails when the configuration makes them errors.
pub fn report(input: &LintInput<'_>, converted: &[Converted], job: &Job) -> Result<(), SolveError> {
    let warnings = warnings(input, converted, false);
    for warning in &warnings {
        job.progress.warning(warn_request(input, warning));
    }
    for key in &input.options.unknown {
        job.progress.warning(unknown_option(input, key));
    }
    match lint::lint_error(&warnings, input.config) {
        Some(message) => Err(SolveError::InvalidDefinition(message)),
        None => Ok(()),
    }
}

/// The checks' warnings over the Dockerfile and the conversions: the dispatch-time rules for
/// the stages the conversions needed, or for every stage (a lint request without a target).
pub fn warnings(
    input: &LintInput<'_>,
    converted: &[Converted],
    all_stages: bool,
) -> Vec<LintWarning> {
    let needed: BTreeSet<usize> = converted.iter().flat_map(|c| c.needed.clone()).collect();
    let context = LintContext {
        predefined_args: Some(input.predefined_args.clone()),
        build_args: input.options.build_args.clone(),
        stages: (!all_stages).then_some(needed),
    };
    let mut warnings = lint::lint_with(input.dockerfile, input.config, &context);
    for found in converted.iter().flat_map(|c| c.lints.iter()) {
        if !warnings.contains(found) {
            warnings.push(found.clone());
        }
    }
    lint::finish(warnings, input.config)
}

/// An option neither nodekitd nor upstream's Dockerfile frontend reads: a typo, most likely.
fn unknown_option(input: &LintInput<'_>, key: &str) -> WarnRequest {
    WarnRequest {
        digest: input.vertex.to_string(),
        level: LINT_LEVEL,
        short: format!("frontend option {key:?} is unknown and has no effect").into_bytes(),
        ..Default::default()
    }
}

/// A warning as BuildKit clients show it: `Rule: message (line N)`, the rule's description
/// and URL, and the Dockerfile range.
fn warn_request(input: &LintInput<'_>, warning: &LintWarning) -> WarnRequest {
    let position = |line: usize| pb::Position {
        line: i32::try_from(line).unwrap_or(i32::MAX),
        character: 0,
    };
    WarnRequest {
        digest: input.vertex.to_string(),
        level: LINT_LEVEL,
        short: warning.short().into_bytes(),
        detail: vec![warning.description.as_bytes().to_vec()],
        url: warning.url.clone(),
        info: Some(pb::SourceInfo {
            filename: input.file.to_string(),
            data: input.text.as_bytes().to_vec(),
            definition: None,
            language: "Dockerfile".into(),
        }),
        ranges: vec![pb::Range {
            start: Some(position(warning.start_line)),
            end: Some(position(warning.end_line)),
        }],
    }
}
