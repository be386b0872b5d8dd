//! Rules upstream runs while parsing and right after: they look at the
//! text of every stage, whatever the build target.

use std::collections::BTreeSet;

use super::rules::{self, Rule};
use super::LintWarning;
use crate::dockerfile::{Dockerfile, Stage};
use crate::instructions::{FromInstruction, Instruction, InstructionKind};

/// Stage names that refer to something else in `COPY --from` / FROM.
const RESERVED_STAGE_NAMES: &[&str] = &["context", "scratch"];

/// The parse-time rules, in upstream's emission order.
pub(super) fn check(df: &Dockerfile) -> Vec<LintWarning> {
    let mut out = empty_continuations(df);
    for arg in &df.global_args {
        out.extend(instruction_checks(arg));
    }
    for stage in &df.stages {
        out.extend(from_checks(&stage.from));
        for inst in &stage.instructions {
            out.extend(instruction_checks(inst));
        }
    }
    out.extend(stage_names(&df.stages));
    out.extend(instruction_casing(&df.stages));
    out
}

/// NoEmptyContinuation from the parser's warnings.
fn empty_continuations(df: &Dockerfile) -> Vec<LintWarning> {
    df.warnings
        .iter()
        .filter(|w| w.message.starts_with("Empty continuation line"))
        .map(|w| {
            rules::NO_EMPTY_CONTINUATION.warning(
                rules::no_empty_continuation_message(),
                w.line,
                w.line,
            )
        })
        .collect()
}

fn at_from(rule: &Rule, message: String, from: &FromInstruction) -> LintWarning {
    rule.warning(message, from.start_line, from.end_line)
}

fn at(rule: &Rule, message: String, inst: &Instruction) -> LintWarning {
    rule.warning(message, inst.start_line, inst.end_line)
}

/// StageNameCasing, FromAsCasing, InvalidDefinitionDescription.
fn from_checks(from: &FromInstruction) -> Vec<LintWarning> {
    let mut out = Vec::new();
    if let Some(written) = &from.name_as_written {
        if *written != written.to_lowercase() {
            let msg = rules::stage_name_casing_message(written);
            out.push(at_from(&rules::STAGE_NAME_CASING, msg, from));
        }
    }
    if let Some(as_keyword) = &from.as_keyword {
        if !as_matches_from_casing(&from.keyword, as_keyword) {
            let msg = rules::from_as_casing_message(&from.keyword, as_keyword);
            out.push(at_from(&rules::FROM_AS_CASING, msg, from));
        }
    }
    if let Some(name) = &from.name {
        if let Some(msg) = definition_description("FROM", &[name.as_str()], &from.comments) {
            out.push(at_from(&rules::INVALID_DEFINITION_DESCRIPTION, msg, from));
        }
    }
    out
}

/// A mixed-case FROM is ConsistentInstructionCasing's business, so only a
/// consistently cased FROM is compared with `AS`.
fn as_matches_from_casing(from: &str, as_keyword: &str) -> bool {
    if from == from.to_lowercase() {
        as_keyword == as_keyword.to_lowercase()
    } else if from == from.to_uppercase() {
        as_keyword == as_keyword.to_uppercase()
    } else {
        true
    }
}

/// MaintainerDeprecated and InvalidDefinitionDescription (ARG).
fn instruction_checks(inst: &Instruction) -> Option<LintWarning> {
    match &inst.kind {
        InstructionKind::Maintainer(_) => Some(at(
            &rules::MAINTAINER_DEPRECATED,
            rules::maintainer_deprecated_message(),
            inst,
        )),
        InstructionKind::Arg(args) => {
            let keys: Vec<&str> = args.iter().map(|a| a.key.as_str()).collect();
            definition_description("ARG", &keys, &inst.comments)
                .map(|msg| at(&rules::INVALID_DEFINITION_DESCRIPTION, msg, inst))
        }
        _ => None,
    }
}

/// The message when the last comment above a definition does not start
/// with one of the defined names (upstream `validateDefinitionDescription`).
fn definition_description(instruction: &str, keys: &[&str], comments: &[String]) -> Option<String> {
    let (last, first_key) = (comments.last()?, keys.first()?);
    let first_word = last.split(' ').next().unwrap_or("");
    if keys.contains(&first_word) {
        return None;
    }
    let example = if keys.len() > 1 {
        "<arg_key>"
    } else {
        first_key
    };
    Some(rules::invalid_definition_description_message(
        instruction,
        example,
    ))
}

/// ReservedStageName and DuplicateStageName.
fn stage_names(stages: &[Stage]) -> Vec<LintWarning> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for stage in stages {
        let Some(name) = &stage.name else { continue };
        if RESERVED_STAGE_NAMES.contains(&name.as_str()) {
            let msg = rules::reserved_stage_name_message(name);
            out.push(at_from(&rules::RESERVED_STAGE_NAME, msg, &stage.from));
        }
        if !seen.insert(name.as_str()) {
            let msg = rules::duplicate_stage_name_message(name);
            out.push(at_from(&rules::DUPLICATE_STAGE_NAME, msg, &stage.from));
        }
    }
    out
}

/// ConsistentInstructionCasing: every keyword in the stages (global ARGs
/// are not counted) against the majority casing; a tie counts as upper.
fn instruction_casing(stages: &[Stage]) -> Vec<LintWarning> {
    let keywords: Vec<(&str, usize, usize)> = stages
        .iter()
        .flat_map(|s| {
            let from = (s.from.keyword.as_str(), s.from.start_line, s.from.end_line);
            let rest = s
                .instructions
                .iter()
                .map(|i| (i.keyword.as_str(), i.start_line, i.end_line));
            std::iter::once(from).chain(rest)
        })
        .collect();
    let lower = keywords.iter().filter(|k| is_lower(k.0)).count();
    let upper = keywords
        .iter()
        .filter(|k| !is_lower(k.0) && is_upper(k.0))
        .count();
    let majority_lower = lower > upper;
    keywords
        .iter()
        .filter_map(|&(keyword, start, end)| {
            let casing = wrong_casing(keyword, majority_lower)?;
            let msg = rules::consistent_instruction_casing_message(keyword, casing);
            Some(rules::CONSISTENT_INSTRUCTION_CASING.warning(msg, start, end))
        })
        .collect()
}

fn is_lower(s: &str) -> bool {
    s == s.to_lowercase()
}

fn is_upper(s: &str) -> bool {
    s == s.to_uppercase()
}

/// The casing `keyword` should have, when it does not.
fn wrong_casing(keyword: &str, majority_lower: bool) -> Option<&'static str> {
    if majority_lower && !is_lower(keyword) {
        Some("lowercase")
    } else if !majority_lower && !is_upper(keyword) {
        Some("uppercase")
    } else {
        None
    }
}
