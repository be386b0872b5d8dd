//! `FROM [--platform=…] image [AS name]`.

use super::flags::{self, Kind};
use crate::ast::Node;
use crate::quote::go_quote;

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInstruction {
    /// Base image or stage name (raw; expand with the global ARGs).
    pub image: String,
    /// `--platform` (raw; expand with the global ARGs).
    pub platform: Option<String>,
    /// Stage name, lower-cased.
    pub name: Option<String>,
    /// Stage name as written (before lower-casing).
    pub name_as_written: Option<String>,
    /// The `AS` keyword as written (`AS`, `as`, …), when a name is given.
    pub as_keyword: Option<String>,
    /// Keyword as written.
    pub keyword: String,
    /// Logical line.
    pub original: String,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based).
    pub end_line: usize,
    /// Comment lines directly above.
    pub comments: Vec<String>,
}

/// Builds the typed FROM (stage name checked before flags, as upstream).
pub(crate) fn parse_from(node: &Node) -> Result<FromInstruction, String> {
    let name = stage_name(&node.args)?;
    let values = flags::parse(&node.flags, &[("platform", Kind::Str)])?;
    Ok(FromInstruction {
        image: node.args.first().cloned().unwrap_or_default(),
        platform: values.string("platform"),
        name,
        name_as_written: node.args.get(2).cloned(),
        as_keyword: node.args.get(1).cloned(),
        keyword: node.command.clone(),
        original: node.original.clone(),
        start_line: node.start_line,
        end_line: node.end_line,
        comments: node.comments.clone(),
    })
}

fn stage_name(args: &[String]) -> Result<Option<String>, String> {
    match args {
        [_] => Ok(None),
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or contain symbols",
                    go_quote(name)
                ));
            }
            Ok(Some(lower))
        }
        _ => Err("FROM requires either one or three arguments".into()),
    }
}

/// `^[a-z][a-z0-9-_.]*$`.
pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::valid_stage_name;

    #[test]
    fn stage_names() {
        assert!(valid_stage_name("build-env_1.0"));
        assert!(!valid_stage_name("1abc"));
        assert!(!valid_stage_name("a/b"));
        assert!(!valid_stage_name(""));
    }
}
