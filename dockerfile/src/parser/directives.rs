//! Parser directives (`# syntax=`, `# escape=`, `# check=`): only
//! recognised in the leading run of directive lines; the first line that is
//! not a valid directive (an instruction, another comment, an empty line)
//! ends the run.

use super::lines::is_go_re_space;
use crate::ast::Directive;

const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// State of directive recognition.
#[derive(Debug, Default)]
pub(super) struct DirectiveParser {
    done: bool,
    /// Directives found so far.
    pub(super) found: Vec<Directive>,
}

impl DirectiveParser {
    /// Looks at one (newline-trimmed, left-trimmed) line. Returns the new
    /// directive, if the line is one; errors on a repeated directive.
    pub(super) fn parse_line(
        &mut self,
        line: &str,
        lineno: usize,
    ) -> Result<Option<&Directive>, String> {
        if self.done {
            return Ok(None);
        }
        let Some((name, value)) = match_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !VALID.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.found.push(Directive {
            name,
            value: value.to_string(),
            line: lineno,
        });
        Ok(self.found.last())
    }
}

/// Upstream regexp `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_go_re_space);
    let first = rest.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_re_space).strip_prefix('=')?;
    Some((name, directive_value(rest)?))
}

/// The `\s*(.+?)\s*$` tail: surrounding whitespace trimmed; when only
/// whitespace remains, the regexp still captures its last character.
fn directive_value(rest: &str) -> Option<&str> {
    let value = rest.trim_matches(is_go_re_space);
    if !value.is_empty() {
        return Some(value);
    }
    let last = rest.chars().next_back()?;
    Some(&rest[rest.len() - last.len_utf8()..])
}

/// Validates an `escape` directive value.
pub(super) fn escape_token(value: &str) -> Result<char, String> {
    match value {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        _ => Err(format!(
            "invalid escape token '{value}' does not match ` or \\"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::match_directive;

    #[test]
    fn directive_regexp() {
        assert_eq!(match_directive("#escape=\\"), Some(("escape", "\\")));
        assert_eq!(
            match_directive("# key = FOO bar "),
            Some(("key", "FOO bar"))
        );
        assert_eq!(match_directive("# syntax=  "), Some(("syntax", " ")));
        assert_eq!(match_directive("# syntax="), None);
        assert_eq!(match_directive("# 1x=a"), None);
        assert_eq!(match_directive("#x"), None);
        assert_eq!(match_directive(" # x=a"), None);
    }
}
