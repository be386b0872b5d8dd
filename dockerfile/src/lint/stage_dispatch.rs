//! Rules upstream runs while dispatching a stage's instructions:
//! LegacyKeyValueFormat, SecretsUsedInArgOrEnv, WorkdirRelativePath,
//! JSONArgsRecommended, MultipleInstructionsDisallowed, ExposeProtoCasing
//! and ExposeInvalidFormat.

use std::collections::HashMap;

use super::from_lines::{meta_env, predefined_args};
use super::rules::{self, Rule};
use super::{LintContext, LintWarning};
use crate::dockerfile::{Dockerfile, Stage};
use crate::instructions::{CommandLine, Instruction, InstructionKind, KeyValue};
use crate::shell::{EmptyEnv, Lexer};

/// What a stage hands down to stages built on it.
#[derive(Debug, Clone, Copy, Default)]
struct Inherited {
    /// A SHELL instruction ran (the image config has a `Shell`).
    shell_set: bool,
    /// A WORKDIR instruction ran.
    workdir_set: bool,
}

/// The last CMD, ENTRYPOINT and HEALTHCHECK of the stage so far, as
/// `(start_line, end_line)`. Not inherited from a base stage.
#[derive(Debug, Default)]
struct UsedOnce {
    cmd: Option<(usize, usize)>,
    entrypoint: Option<(usize, usize)>,
    healthcheck: Option<(usize, usize)>,
}

/// Per-stage walk state.
struct StageWalk<'a> {
    lexer: &'a Lexer,
    state: Inherited,
    used_once: UsedOnce,
    out: Vec<LintWarning>,
}

/// Dispatch-time rules for the stages `ctx` selects, each stage starting
/// from the state of the earlier stage it is built on.
pub(super) fn check(df: &Dockerfile, ctx: &LintContext) -> Vec<LintWarning> {
    let lexer = Lexer::new(df.escape);
    let bases = base_stages(df, &lexer, ctx);
    let mut finals: Vec<Inherited> = Vec::with_capacity(df.stages.len());
    let mut out = Vec::new();
    for (index, stage) in df.stages.iter().enumerate() {
        let start = bases[index].map(|b| finals[b]).unwrap_or_default();
        let (state, warnings) = walk_stage(stage, &lexer, start);
        finals.push(state);
        if ctx.stages.as_ref().is_none_or(|s| s.contains(&index)) {
            out.extend(warnings);
        }
    }
    out
}

/// For each stage, the earlier stage its FROM names (after expanding the
/// global ARGs; exact match on the lower-cased stage name, the latest
/// such stage winning, as upstream's `addState`).
fn base_stages(df: &Dockerfile, lexer: &Lexer, ctx: &LintContext) -> Vec<Option<usize>> {
    let env = meta_env(df, lexer, predefined_args(df, ctx), Some(&ctx.build_args));
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut bases = Vec::with_capacity(df.stages.len());
    for (index, stage) in df.stages.iter().enumerate() {
        let image = env
            .as_ref()
            .and_then(|env| lexer.process_word(&stage.from.image, env).ok());
        bases.push(image.and_then(|i| by_name.get(i.as_str()).copied()));
        if let Some(name) = &stage.name {
            by_name.insert(name, index);
        }
    }
    bases
}

fn walk_stage(stage: &Stage, lexer: &Lexer, start: Inherited) -> (Inherited, Vec<LintWarning>) {
    let mut walk = StageWalk {
        lexer,
        state: start,
        used_once: UsedOnce::default(),
        out: Vec::new(),
    };
    for inst in &stage.instructions {
        walk.instruction(inst);
    }
    (walk.state, walk.out)
}

impl StageWalk<'_> {
    fn instruction(&mut self, inst: &Instruction) {
        match &inst.kind {
            InstructionKind::Env(pairs) => self.env(inst, pairs),
            InstructionKind::Label(pairs) => self.legacy_pairs(inst, pairs),
            InstructionKind::Arg(defs) => {
                for def in defs {
                    self.secret_key("ARG", &def.key, inst);
                }
            }
            InstructionKind::Workdir(path) => self.workdir(inst, path),
            InstructionKind::Cmd(cmd) | InstructionKind::Entrypoint(cmd) => {
                self.used_once(inst);
                self.json_args(inst, cmd);
            }
            InstructionKind::Healthcheck(_) => self.used_once(inst),
            InstructionKind::Shell(_) => self.state.shell_set = true,
            InstructionKind::Expose(ports) => self.expose(inst, ports),
            _ => {}
        }
    }

    fn warn(&mut self, rule: &Rule, message: String, inst: &Instruction) {
        self.out
            .push(rule.warning(message, inst.start_line, inst.end_line));
    }

    /// The word after quote removal, when it references no variable (its
    /// value would depend on the stage environment).
    fn literal(&self, word: &str) -> Option<crate::shell::ProcessResult> {
        let result = self.lexer.process_word_with_matches(word, &EmptyEnv).ok()?;
        (result.matched.is_empty() && result.unmatched.is_empty()).then_some(result)
    }

    /// LegacyKeyValueFormat then SecretsUsedInArgOrEnv, pair by pair.
    fn env(&mut self, inst: &Instruction, pairs: &[KeyValue]) {
        for pair in pairs {
            self.legacy_pair(inst, pair);
            if let Some(key) = self.literal(&pair.key) {
                self.secret_key("ENV", &key.result, inst);
            }
        }
    }

    fn legacy_pairs(&mut self, inst: &Instruction, pairs: &[KeyValue]) {
        for pair in pairs {
            self.legacy_pair(inst, pair);
        }
    }

    fn legacy_pair(&mut self, inst: &Instruction, pair: &KeyValue) {
        if pair.legacy {
            let msg = rules::legacy_key_value_format_message(&inst.keyword);
            self.warn(&rules::LEGACY_KEY_VALUE_FORMAT, msg, inst);
        }
    }

    fn secret_key(&mut self, instruction: &str, key: &str, inst: &Instruction) {
        if looks_like_secret(key) {
            let msg = rules::secrets_used_in_arg_or_env_message(instruction, key);
            self.warn(&rules::SECRETS_USED_IN_ARG_OR_ENV, msg, inst);
        }
    }

    /// Only the first WORKDIR of the build (stage chain) is judged.
    fn workdir(&mut self, inst: &Instruction, path: &str) {
        if !self.state.workdir_set {
            let relative = self.literal(path).filter(|p| !p.result.starts_with('/'));
            if let Some(p) = relative {
                let msg = rules::workdir_relative_path_message(&p.result);
                self.warn(&rules::WORKDIR_RELATIVE_PATH, msg, inst);
            }
        }
        self.state.workdir_set = true;
    }

    /// MultipleInstructionsDisallowed, reported at the previous
    /// instruction of the kind (the one that is ignored), named as the
    /// current one is written.
    fn used_once(&mut self, inst: &Instruction) {
        let slot = match &inst.kind {
            InstructionKind::Cmd(_) => &mut self.used_once.cmd,
            InstructionKind::Entrypoint(_) => &mut self.used_once.entrypoint,
            _ => &mut self.used_once.healthcheck,
        };
        let previous = slot.replace((inst.start_line, inst.end_line));
        if let Some((start, end)) = previous {
            let msg = rules::multiple_instructions_disallowed_message(&inst.keyword);
            self.out
                .push(rules::MULTIPLE_INSTRUCTIONS_DISALLOWED.warning(msg, start, end));
        }
    }

    fn json_args(&mut self, inst: &Instruction, cmd: &CommandLine) {
        if cmd.prepend_shell && !self.state.shell_set {
            let msg = rules::json_args_recommended_message(&inst.keyword);
            self.warn(&rules::JSON_ARGS_RECOMMENDED, msg, inst);
        }
    }

    /// ExposeProtoCasing and ExposeInvalidFormat for each port word
    /// without variables.
    fn expose(&mut self, inst: &Instruction, ports: &[String]) {
        let words: Vec<String> = ports
            .iter()
            .filter_map(|p| self.literal(p))
            .flat_map(|r| r.words)
            .collect();
        for port in words {
            for (rule, msg) in expose_findings(&port) {
                self.warn(rule, msg, inst);
            }
        }
    }
}

/// The EXPOSE rules for one expanded port spec
/// (`[ip:][host_port:]port[/proto]`), in upstream's order. A spec whose
/// port or protocol is invalid gets none (the build fails on it).
pub(crate) fn expose_findings(raw: &str) -> Vec<(&'static Rule, String)> {
    let (ip, host_port, container) = split_port_parts(raw);
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    let proto_valid = matches!(proto.to_lowercase().as_str(), "" | "tcp" | "udp" | "sctp");
    if port.is_empty() || !proto_valid {
        return Vec::new();
    }
    let mut out = Vec::new();
    if proto != proto.to_lowercase() {
        out.push((
            &rules::EXPOSE_PROTO_CASING,
            rules::expose_proto_casing_message(raw),
        ));
    }
    if !ip.is_empty() || !host_port.is_empty() {
        out.push((
            &rules::EXPOSE_INVALID_FORMAT,
            rules::expose_invalid_format_message(raw),
        ));
    }
    out
}

/// `(ip, host_port, container_port)` as upstream's `splitParts`: extra
/// colons belong to the IP (IPv6).
fn split_port_parts(raw: &str) -> (&str, &str, &str) {
    let Some((rest, container)) = raw.rsplit_once(':') else {
        return ("", "", raw);
    };
    match rest.rsplit_once(':') {
        Some((ip, host)) => (ip, host, container),
        None => ("", rest, container),
    }
}

/// Secret-like names: an `_`-separated word (case-insensitive) is one of
/// upstream's secret tokens, and none is `public`.
pub(crate) fn looks_like_secret(key: &str) -> bool {
    const SECRET_TOKENS: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let words: Vec<String> = key.split('_').map(fold_case).collect();
    let has = |token: &str| words.iter().any(|w| w == token);
    SECRET_TOKENS.iter().any(|t| has(t)) && !has("public")
}

/// Lower-case with Go's `(?i)` folding of the two non-ASCII letters that
/// match ASCII ones (`ſ` → s, Kelvin sign → k).
fn fold_case(word: &str) -> String {
    word.chars()
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for key in [
            "SECRET_PASSPHRASE",
            "SUPER_Secret",
            "git_key",
            "AUTH",
            "a_ſecret",
        ] {
            assert!(looks_like_secret(key), "{key}");
        }
        for key in [
            "PUBLIC_KEY",
            "sunflower",
            "keyboard",
            "monkey",
            "public_token",
            "",
        ] {
            assert!(!looks_like_secret(key), "{key}");
        }
    }

    #[test]
    fn port_parts() {
        assert_eq!(split_port_parts("80"), ("", "", "80"));
        assert_eq!(split_port_parts("5000:5000"), ("", "5000", "5000"));
        assert_eq!(split_port_parts("1.2.3.4:80:80"), ("1.2.3.4", "80", "80"));
        assert_eq!(split_port_parts("[::1]:80:80"), ("[::1]", "80", "80"));
        assert!(expose_findings("80/xyz").is_empty());
        assert!(expose_findings("/tcp").is_empty());
        assert_eq!(expose_findings("1:2/UDP").len(), 2);
    }
}
