//! Rules on FROM lines expanded with the global ARGs: InvalidDefaultArgInFrom,
//! UndefinedArgInFrom, RedundantTargetPlatform and
//! FromPlatformFlagConstDisallowed (upstream `toDispatchState`).

use std::collections::BTreeMap;

use super::platform::parse_platform;
use super::reference::is_valid_image_reference;
use super::rules;
use super::{LintContext, LintWarning};
use crate::dockerfile::{Dockerfile, Stage};
use crate::instructions::InstructionKind;
use crate::shell::{Lexer, ProcessResult};
use crate::suggest;

/// Names of the predefined platform ARGs, in upstream's order.
const PREDEFINED_ARG_NAMES: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// An ordered variable list; the last entry for a name wins (upstream
/// `EnvList.AddOrReplace`).
type MetaEnv = Vec<(String, String)>;

/// The FROM-line rules for every stage, in upstream's order.
pub(super) fn check(df: &Dockerfile, ctx: &LintContext) -> Vec<LintWarning> {
    let lexer = Lexer::new(df.escape);
    let predefined = predefined_args(df, ctx);
    let mut out = invalid_default_args(df, &lexer, &predefined);
    if let Some(env) = meta_env(df, &lexer, predefined, Some(&ctx.build_args)) {
        out.extend(from_variables(df, &lexer, &env));
    }
    out
}

/// The global ARG environment FROM lines are expanded with, as upstream's
/// `buildMetaArgs` builds it (`build_args` `None`: defaults only). `None`
/// when a default fails to expand (the build fails there).
pub(super) fn meta_env(
    df: &Dockerfile,
    lexer: &Lexer,
    mut env: MetaEnv,
    build_args: Option<&BTreeMap<String, String>>,
) -> Option<MetaEnv> {
    for arg in global_arg_defs(df) {
        let value = match build_args.and_then(|b| b.get(&arg.key)) {
            Some(v) => Some(v.clone()),
            None => match &arg.default {
                Some(d) => Some(lexer.process_word(d, &env).ok()?),
                None => None,
            },
        };
        if let Some(v) = value {
            env.push((arg.key.clone(), v));
        }
    }
    Some(env)
}

/// The context's predefined ARGs (or linux/amd64 placeholders), with
/// build args of the same names applied.
pub(super) fn predefined_args(df: &Dockerfile, ctx: &LintContext) -> MetaEnv {
    let mut env = ctx
        .predefined_args
        .clone()
        .unwrap_or_else(|| placeholder_predefined_args(df));
    for (name, value) in &ctx.build_args {
        if PREDEFINED_ARG_NAMES.contains(&name.as_str()) {
            env.push((name.clone(), value.clone()));
        }
    }
    env
}

fn placeholder_predefined_args(df: &Dockerfile) -> MetaEnv {
    let target = df
        .stages
        .last()
        .and_then(|s| s.name.clone())
        .unwrap_or_else(|| "default".to_string());
    let values = [
        "linux/amd64",
        "linux",
        "",
        "amd64",
        "",
        "linux/amd64",
        "linux",
        "",
        "amd64",
        "",
        target.as_str(),
    ];
    PREDEFINED_ARG_NAMES
        .iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn global_arg_defs(df: &Dockerfile) -> impl Iterator<Item = &crate::instructions::ArgDef> {
    df.global_args.iter().flat_map(|inst| match &inst.kind {
        InstructionKind::Arg(defs) => defs.as_slice(),
        _ => &[],
    })
}

/// InvalidDefaultArgInFrom: each base image name, expanded with the ARG
/// defaults only, must be a valid image reference. Stops (silently) where
/// upstream gives up: a default or a FROM line that fails to expand.
fn invalid_default_args(df: &Dockerfile, lexer: &Lexer, predefined: &MetaEnv) -> Vec<LintWarning> {
    let Some(env) = meta_env(df, lexer, predefined.clone(), None) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stage in &df.stages {
        let Ok(name) = lexer.process_word(&stage.from.image, &env) else {
            break;
        };
        if !is_valid_image_reference(&name) {
            let msg = rules::invalid_default_arg_in_from_message(&stage.from.image);
            out.push(at_stage(&rules::INVALID_DEFAULT_ARG_IN_FROM, msg, stage));
        }
    }
    out
}

fn at_stage(rule: &rules::Rule, message: String, stage: &Stage) -> LintWarning {
    rule.warning(message, stage.from.start_line, stage.from.end_line)
}

/// UndefinedArgInFrom, RedundantTargetPlatform and
/// FromPlatformFlagConstDisallowed for each stage, stopping at the first
/// FROM line the build would fail on.
fn from_variables(df: &Dockerfile, lexer: &Lexer, env: &MetaEnv) -> Vec<LintWarning> {
    let known = known_arg_names(df, env);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for stage in &df.stages {
        let Ok(image) = lexer.process_word_with_matches(&stage.from.image, env) else {
            break;
        };
        out.extend(undefined_args(&image, &known, stage));
        if image.result.is_empty() {
            break;
        }
        let Some(platform) = stage.platform.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let Ok(matches) = lexer.process_word_with_matches(platform, env) else {
            break;
        };
        out.extend(undefined_args(&matches, &known, stage));
        out.extend(redundant_target_platform(platform, &matches, env, stage));
        out.extend(const_platform(&matches, stage));
        if matches.result.is_empty() || parse_platform(&matches.result).is_none() {
            break;
        }
    }
    out
}

/// Every name a FROM line may use: the environment's and every declared
/// global ARG (also those without a value), first-seen order.
fn known_arg_names(df: &Dockerfile, env: &MetaEnv) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let all = env
        .iter()
        .map(|(k, _)| k)
        .chain(global_arg_defs(df).map(|a| &a.key));
    for name in all {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

fn undefined_args(matches: &ProcessResult, known: &[&str], stage: &Stage) -> Vec<LintWarning> {
    matches
        .unmatched
        .iter()
        .filter(|name| !known.contains(&name.as_str()))
        .map(|name| {
            let suggestion = suggest::search(name, known, true);
            let msg = rules::undefined_arg_in_from_message(name, suggestion.as_deref());
            at_stage(&rules::UNDEFINED_ARG_IN_FROM, msg, stage)
        })
        .collect()
}

/// Exactly `$TARGETPLATFORM` was used and the result is its value.
fn redundant_target_platform(
    platform: &str,
    matches: &ProcessResult,
    env: &MetaEnv,
    stage: &Stage,
) -> Option<LintWarning> {
    let only_target = matches.matched.len() == 1
        && matches.unmatched.is_empty()
        && matches.matched.contains("TARGETPLATFORM");
    let value = crate::shell::Env::get(env, "TARGETPLATFORM");
    if !only_target || value != Some(matches.result.as_str()) {
        return None;
    }
    let msg = rules::redundant_target_platform_message(platform);
    Some(at_stage(&rules::REDUNDANT_TARGET_PLATFORM, msg, stage))
}

/// A platform without variables, unless the stage name mentions its OS or
/// architecture (`AS build-arm64`). Unparsable values are left to the
/// build error.
fn const_platform(matches: &ProcessResult, stage: &Stage) -> Option<LintWarning> {
    if !matches.matched.is_empty() || !matches.unmatched.is_empty() {
        return None;
    }
    let platform = parse_platform(&matches.result)?;
    let name = stage.name.as_deref().unwrap_or("");
    if name.contains(&platform.os) || name.contains(&platform.arch) {
        return None;
    }
    let msg = rules::from_platform_flag_const_disallowed_message(&matches.result);
    Some(at_stage(
        &rules::FROM_PLATFORM_FLAG_CONST_DISALLOWED,
        msg,
        stage,
    ))
}
