//! Node → typed instruction (upstream `ParseInstruction`).

use super::copy::{parse_add, parse_copy};
use super::flags;
use super::from::FromInstruction;
use super::healthcheck::parse_healthcheck;
use super::run::{command_line, parse_run};
use super::types::{ArgDef, Instruction, InstructionKind, KeyValue, OnbuildInstruction};
use crate::ast::Node;
use crate::error::ParseError;
use crate::suggest;

const ALL_NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A node is either the start of a stage or an instruction.
pub(crate) enum Parsed {
    From(FromInstruction),
    Instruction(Instruction),
}

/// Converts one node; errors carry the node's start line.
pub(crate) fn convert(node: &Node) -> Result<Parsed, ParseError> {
    let err = |m: String| ParseError::new(node.start_line, m);
    if node.command.eq_ignore_ascii_case("from") {
        return super::from::parse_from(node).map(Parsed::From).map_err(err);
    }
    let kind = kind(node).map_err(err)?;
    Ok(Parsed::Instruction(Instruction {
        kind,
        keyword: node.command.clone(),
        original: node.original.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        comments: node.comments.clone(),
    }))
}

fn no_flags(node: &Node) -> Result<(), String> {
    flags::parse(&node.flags, &[]).map(|_| ())
}

fn exactly_one(node: &Node, cmd: &str) -> Result<String, String> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{cmd} requires exactly one argument")),
    }
}

fn at_least_one(node: &Node, cmd: &str) -> Result<(), String> {
    if node.args.is_empty() {
        return Err(format!("{cmd} requires at least one argument"));
    }
    Ok(())
}

fn kind(node: &Node) -> Result<InstructionKind, String> {
    use InstructionKind as K;
    Ok(match node.command.to_lowercase().as_str() {
        "env" => K::Env(no_flags(node).and_then(|_| key_values(node, "ENV"))?),
        "label" => K::Label(no_flags(node).and_then(|_| key_values(node, "LABEL"))?),
        "maintainer" => K::Maintainer(one_with_flags(node, "MAINTAINER")?),
        "workdir" => K::Workdir(one_with_flags(node, "WORKDIR")?),
        "user" => K::User(one_with_flags(node, "USER")?),
        "stopsignal" => K::StopSignal(exactly_one(node, "STOPSIGNAL")?),
        "add" => K::Add(parse_add(node)?),
        "copy" => K::Copy(parse_copy(node)?),
        "onbuild" => K::Onbuild(parse_onbuild(node)?),
        "run" => K::Run(parse_run(node)?),
        "cmd" => K::Cmd(no_flags(node).map(|_| command_line(node))?),
        "entrypoint" => K::Entrypoint(no_flags(node).map(|_| command_line(node))?),
        "healthcheck" => K::Healthcheck(parse_healthcheck(node)?),
        "expose" => K::Expose(parse_expose(node)?),
        "volume" => K::Volume(parse_volume(node)?),
        "arg" => K::Arg(parse_arg(node)?),
        "shell" => K::Shell(parse_shell(node)?),
        _ => {
            let msg = format!("unknown instruction: {}", node.command);
            return Err(suggest::wrap(msg, &node.command, ALL_NAMES, false));
        }
    })
}

fn one_with_flags(node: &Node, cmd: &str) -> Result<String, String> {
    let value = exactly_one(node, cmd)?;
    no_flags(node)?;
    Ok(value)
}

/// `key value sep` triples to pairs (upstream `parseKvps`).
fn key_values(node: &Node, cmd: &str) -> Result<Vec<KeyValue>, String> {
    at_least_one(node, cmd)?;
    if !node.args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    node.args
        .chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(format!("{cmd} names can not be blank"));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                legacy: c[2].is_empty(),
            })
        })
        .collect()
}

fn parse_expose(node: &Node) -> Result<Vec<String>, String> {
    at_least_one(node, "EXPOSE")?;
    no_flags(node)?;
    let mut ports = node.args.clone();
    ports.sort();
    Ok(ports)
}

fn parse_volume(node: &Node) -> Result<Vec<String>, String> {
    at_least_one(node, "VOLUME")?;
    no_flags(node)?;
    node.args
        .iter()
        .map(|v| match v.trim() {
            "" => Err("VOLUME specified can not be an empty string".to_string()),
            t => Ok(t.to_string()),
        })
        .collect()
}

/// ARG does not validate its flags upstream.
fn parse_arg(node: &Node) -> Result<Vec<ArgDef>, String> {
    at_least_one(node, "ARG")?;
    node.args
        .iter()
        .map(|arg| match arg.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok(ArgDef {
                key: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDef {
                key: arg.clone(),
                default: None,
            }),
        })
        .collect()
}

fn parse_shell(node: &Node) -> Result<Vec<String>, String> {
    no_flags(node)?;
    let cmd = command_line(node);
    if cmd.args.is_empty() {
        return Err("SHELL requires at least one argument".into());
    }
    if !node.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(cmd.args)
}

fn parse_onbuild(node: &Node) -> Result<OnbuildInstruction, String> {
    let Some(sub) = node.sub.as_deref() else {
        return Err("ONBUILD requires at least one argument".into());
    };
    no_flags(node)?;
    let trigger = sub.command.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    let child = Node {
        heredocs: node.heredocs.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        ..sub.clone()
    };
    let typed = match convert(&child) {
        Ok(Parsed::Instruction(i)) => Ok(Box::new(i)),
        Ok(Parsed::From(_)) => Err(ParseError::new(
            node.start_line,
            "FROM isn't allowed as an ONBUILD trigger",
        )),
        Err(e) => Err(e),
    };
    Ok(OnbuildInstruction {
        expression: onbuild_expression(node),
        trigger: typed,
    })
}

/// The line without the ONBUILD keyword, with heredoc bodies appended.
fn onbuild_expression(node: &Node) -> String {
    let trimmed = node.original.trim_start();
    let rest = trimmed
        .get(..7)
        .filter(|k| k.eq_ignore_ascii_case("onbuild"))
        .map(|_| trimmed[7..].trim_start())
        .unwrap_or(trimmed);
    let mut out = rest.to_string();
    for h in &node.heredocs {
        out.push('\n');
        out.push_str(&h.content);
        out.push_str(&h.name);
    }
    out
}
