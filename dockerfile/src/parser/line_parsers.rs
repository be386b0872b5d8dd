//! Per-instruction argument parsers (upstream `line_parsers.go`) and the
//! dispatch from keyword to parser.

use super::lines::is_re_ws;
use super::split::{parse_words, split_command};
use crate::ast::Node;

/// Arguments of one instruction after its line parser ran.
#[derive(Default)]
struct Parsed {
    args: Vec<String>,
    sub: Option<Box<Node>>,
    json: bool,
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Builds the node for one logical line (upstream `newNodeFromLine`);
/// line numbers and heredocs are filled in by the caller.
pub(super) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, String> {
    node_at_depth(line, escape, comments, 0)
}

/// Nested `ONBUILD ONBUILD …` levels parsed before giving up (upstream
/// recurses without limit and rejects the chain later).
const MAX_ONBUILD_DEPTH: usize = 8;

fn node_at_depth(
    line: &str,
    escape: char,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, String> {
    let (command, flags, rest) = split_command(line, escape);
    let parsed = dispatch(&command.to_lowercase(), &rest, escape, depth)?;
    Ok(Node {
        command,
        flags,
        args: parsed.args,
        sub: parsed.sub,
        json: parsed.json,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}

fn dispatch(command: &str, rest: &str, escape: char, depth: usize) -> Result<Parsed, String> {
    match command {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok(plain(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" => name_val(rest, "ENV", escape),
        "label" => name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(plain(whitespace_delimited(rest))),
        "healthcheck" => health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(plain(single(rest))),
        "onbuild" => sub_command(rest, escape, depth + 1),
        // Unknown keywords are rejected later, by the instruction layer.
        _ => Ok(plain(vec![String::new()])),
    }
}

fn plain(args: Vec<String>) -> Parsed {
    Parsed {
        args,
        ..Parsed::default()
    }
}

fn single(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_string()]
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_re_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn sub_command(rest: &str, escape: char, depth: usize) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    if depth > MAX_ONBUILD_DEPTH {
        return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
    }
    let child = node_at_depth(rest, escape, Vec::new(), depth)?;
    Ok(Parsed {
        sub: Some(Box::new(child)),
        ..Parsed::default()
    })
}

/// `Ok(Some)` for a JSON array of strings, `Ok(None)` when the text is not
/// a JSON array, `Err` for a JSON array with non-string elements.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn json(args: Vec<String>) -> Parsed {
    Parsed {
        args,
        json: true,
        sub: None,
    }
}

/// JSON array (exec form) or the whole text as one argument.
fn maybe_json(rest: &str) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => json(args),
        None => plain(vec![rest.to_string()]),
    })
}

/// JSON array or whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<Parsed, String> {
    Ok(match parse_json(rest)? {
        Some(args) => json(args),
        None => plain(whitespace_delimited(rest)),
    })
}

/// `KEY value` (legacy, one pair) or `k=v k2=v2 …`, as `key value sep`
/// triples with quotes kept (upstream `parseNameVal`).
fn name_val(rest: &str, key: &str, escape: char) -> Result<Parsed, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        let Some(i) = rest.find(is_re_ws) else {
            return Err(format!("{key} must have two arguments"));
        };
        let value = rest[i..].trim_start_matches(is_re_ws);
        return Ok(plain(vec![
            rest[..i].to_string(),
            value.to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                crate::quote::go_quote(word)
            ));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(plain(args))
}

/// `HEALTHCHECK TYPE [cmd]`: the type word, then the command parsed like
/// RUN's.
fn health_config(rest: &str) -> Result<Parsed, String> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let cmd = maybe_json(rest[sep..].trim_start())?;
    let mut args = vec![rest[..sep].to_string()];
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        json: cmd.json,
        sub: None,
    })
}
