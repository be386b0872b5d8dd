//! Physical line reading and the per-line helpers of upstream's parser
//! (newline/BOM trimming, comment detection, line continuation).

/// Upstream reads lines with a `bufio.Scanner` whose token limit makes
/// longer lines an error.
pub(super) const MAX_LINE: usize = 65535;

/// Yields raw lines (with their `\n`) and counts them.
pub(super) struct Lines<'a> {
    src: &'a str,
    pos: usize,
    /// Number of lines returned so far (= 1-based number of the last one).
    pub(super) count: usize,
    /// Set when reading stopped at a line longer than [`MAX_LINE`].
    pub(super) too_long: bool,
}

impl<'a> Lines<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Lines {
            src,
            pos: 0,
            count: 0,
            too_long: false,
        }
    }

    /// The next raw line, or `None` at the end (or after an over-long line).
    pub(super) fn next_line(&mut self) -> Option<&'a str> {
        if self.too_long || self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let (line, content_len) = match rest.find('\n') {
            Some(i) => (&rest[..=i], i),
            None => (rest, rest.len()),
        };
        if content_len > MAX_LINE {
            self.too_long = true;
            return None;
        }
        self.pos += line.len();
        self.count += 1;
        Some(line)
    }
}

/// Removes trailing `\r` and `\n` characters.
pub(super) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Strips a UTF-8 byte order mark.
pub(super) fn discard_bom(line: &str) -> &str {
    line.strip_prefix('\u{FEFF}').unwrap_or(line)
}

/// A line whose first non-blank character is `#`.
pub(super) fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Blank after newline trimming.
pub(super) fn is_empty_continuation_line(line: &str) -> bool {
    trim_newline(line).trim_start().is_empty()
}

/// Comment lines become empty.
pub(super) fn trim_comments(line: &str) -> &str {
    if is_comment(line) {
        ""
    } else {
        line
    }
}

/// Detects a trailing escape token (optionally followed by blanks) that
/// continues the instruction on the next line. Returns the line without it
/// and whether the logical line ends here. An escape preceded by another
/// escape is not a continuation (upstream's regular expression).
pub(super) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Upstream's `reWhitespace` class `[\t\v\f\r ]`.
pub(super) fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go regexp `\s`: `[\t\n\f\r ]`.
pub(super) fn is_go_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

#[cfg(test)]
mod tests {
    use super::trim_continuation;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN a\\ \t", '\\'), ("RUN a", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }
}
