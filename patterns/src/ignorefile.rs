//! Reading `.dockerignore` files (moby patternmatcher's `ignorefile.ReadAll`).

use crate::clean_path;

/// Turns the text of a `.dockerignore` file into patterns for
/// [`crate::PatternMatcher::new`]: a UTF-8 BOM is dropped, lines starting
/// with `#` are comments, lines are trimmed and blank ones skipped, and each
/// pattern (after a `!`, which is kept) is cleaned and loses a leading `/`,
/// so `/a` and `a` are the same.
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (invert, rest) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut pattern = String::new();
        if !rest.is_empty() {
            let cleaned = clean_path(rest);
            pattern = match cleaned.strip_prefix('/') {
                Some(relative) if !relative.is_empty() => relative.to_string(),
                _ => cleaned,
            };
        }
        if invert {
            pattern.insert(0, '!');
        }
        out.push(pattern);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_lines() {
        let text = "\u{feff}# comment\n\n  /a/b/  \n!/c/./d\n*.md\r\n # not a comment\n!\n/\n";
        assert_eq!(
            read_ignore_file(text),
            ["a/b", "!c/d", "*.md", "# not a comment", "!", "/"]
        );
    }
}
