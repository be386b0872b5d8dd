//! Warnings only the converter can decide, because they need the stage
//! environment during dispatch, the pulled base image or `.dockerignore`.
//! Each helper builds the warning(s) with upstream's message; filter and
//! order them together with [`super::lint`]'s output through
//! [`super::finish`] (or check [`super::LintConfig::is_enabled`]).

use super::rules;
use super::LintWarning;
use crate::suggest;

/// Variables that never reach the environment and are never reported
/// (upstream `nonEnvArgs`).
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// UndefinedVar for one expanded word of an instruction (upstream
/// `reportUnmatchedVariables`).
///
/// Call it for every word upstream expands with the stage environment
/// (the `expand_words`/`expand_contents` words, see the crate docs) with:
/// - `unmatched`: [`crate::ProcessResult::unmatched`] of that expansion;
/// - `declared_args`: names of the ARGs declared so far in the stage and
///   in the stages it is built on (with or without a value);
/// - `env_keys`: names set in the stage environment (base image `Env`,
///   ENV, ARGs with a value), used for the "did you mean" hint
///   (case-sensitive, as upstream on Linux);
/// - the instruction's lines.
pub fn undefined_vars<'a>(
    unmatched: impl IntoIterator<Item = &'a String>,
    declared_args: &[&str],
    env_keys: &[&str],
    start_line: usize,
    end_line: usize,
) -> Vec<LintWarning> {
    unmatched
        .into_iter()
        .map(String::as_str)
        .filter(|name| !declared_args.contains(name) && !NON_ENV_ARGS.contains(name))
        .map(|name| {
            let suggestion = suggest::search(name, env_keys, true);
            undefined_var(name, suggestion.as_deref(), start_line, end_line)
        })
        .collect()
}

/// The UndefinedVar warning for `name`:
/// `Usage of undefined variable '$name'[ (did you mean $suggestion?)]`.
pub fn undefined_var(
    name: &str,
    suggestion: Option<&str>,
    start_line: usize,
    end_line: usize,
) -> LintWarning {
    let msg = rules::undefined_var_message(name, suggestion);
    rules::UNDEFINED_VAR.warning(msg, start_line, end_line)
}

/// InvalidBaseImagePlatform, for a reachable stage whose pulled image
/// config has another OS or architecture than the platform requested.
/// `expected` and `actual` are formatted as upstream
/// (`platforms.FormatAll(platforms.Normalize(p))`, e.g. `linux/arm64`);
/// the lines are the FROM instruction's.
pub fn invalid_base_image_platform(
    image: &str,
    expected: &str,
    actual: &str,
    start_line: usize,
    end_line: usize,
) -> LintWarning {
    let msg = rules::invalid_base_image_platform_message(image, expected, actual);
    rules::INVALID_BASE_IMAGE_PLATFORM.warning(msg, start_line, end_line)
}

/// CopyIgnoredFile (experimental): a COPY/ADD source excluded by
/// `.dockerignore`. `command` is `Copy` or `Add` (upstream's spelling).
pub fn copy_ignored_file(
    command: &str,
    file: &str,
    start_line: usize,
    end_line: usize,
) -> LintWarning {
    let msg = rules::copy_ignored_file_message(command, file);
    rules::COPY_IGNORED_FILE.warning(msg, start_line, end_line)
}
