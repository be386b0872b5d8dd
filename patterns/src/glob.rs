//! Glob tokens, their matcher, and Go's `path/filepath.Match` syntax.
//!
//! Both pattern flavours of this crate compile to the same [`Token`] list:
//! `glob_match` from Go's `filepath.Match` syntax, and
//! [`crate::PatternMatcher`] from moby's, which adds `**`.

use crate::PatternError;

/// A character class `[...]`: one character in (or, negated, not in) any of
/// the inclusive ranges. Unlike `?`, a class can match `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }

    /// Whether a range is reversed (`z-a`): Go's `filepath.Match` accepts
    /// it (it matches nothing), Go's regexp engine refuses it.
    pub(crate) fn has_reversed_range(&self) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo > hi)
    }

    /// Parses a class whose `[` is just before `pos`, with Go's rules: an
    /// optional `^`, then at least one item, each a character or a range
    /// `lo-hi`; an item may not start with `-` or `]` (unless escaped with
    /// `\`), and the class may not end the pattern unclosed.
    /// Returns the class and the position after its `]`.
    pub(crate) fn parse(
        chars: &[char],
        mut pos: usize,
        pattern: &str,
    ) -> Result<(Class, usize), PatternError> {
        let negated = chars.get(pos) == Some(&'^');
        if negated {
            pos += 1;
        }
        let mut ranges = Vec::new();
        loop {
            if chars.get(pos) == Some(&']') && !ranges.is_empty() {
                return Ok((Class { negated, ranges }, pos + 1));
            }
            let (lo, next) = class_char(chars, pos, pattern)?;
            pos = next;
            let mut hi = lo;
            if chars.get(pos) == Some(&'-') {
                (hi, pos) = class_char(chars, pos + 1, pattern)?;
            }
            ranges.push((lo, hi));
        }
    }
}

/// One (possibly `\`-escaped) class character at `pos` (Go's `getEsc`).
fn class_char(
    chars: &[char],
    mut pos: usize,
    pattern: &str,
) -> Result<(char, usize), PatternError> {
    const MALFORMED: &str = "malformed character class";
    let c = match chars.get(pos) {
        None | Some('-') | Some(']') => return Err(PatternError::bad(pattern, MALFORMED)),
        Some('\\') => {
            pos += 1;
            *chars
                .get(pos)
                .ok_or_else(|| PatternError::bad(pattern, MALFORMED))?
        }
        Some(&c) => c,
    };
    pos += 1;
    if pos >= chars.len() {
        return Err(PatternError::bad(pattern, "unterminated character class"));
    }
    Ok((c, pos))
}

/// One element of a compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: any one character except `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    Star,
    /// `[...]`.
    Class(Class),
    /// A `**` followed by more pattern: nothing, or anything ending in `/`
    /// (upstream's regexp `(.*/)?`).
    AnyDirs,
    /// A `**` ending the pattern: anything at all (`.*`).
    AnyTail,
}

impl Token {
    /// For tokens that consume exactly one character: whether `c` matches.
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => c != '/',
            Token::Class(class) => class.matches(c),
            Token::Star | Token::AnyDirs | Token::AnyTail => false,
        }
    }
}

/// Whether `tokens` match all of `name`.
///
/// Runs the tokens as a set of reachable positions in `name` (a
/// non-backtracking simulation), so the cost is at most tokens × length
/// even for patterns like `*a*a*a*b`.
pub(crate) fn match_tokens(tokens: &[Token], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let mut reach = vec![false; chars.len() + 1];
    reach[0] = true;
    for token in tokens {
        reach = step(token, &chars, &reach);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[chars.len()]
}

/// The positions reachable after `token`, given those reachable before it.
fn step(token: &Token, chars: &[char], before: &[bool]) -> Vec<bool> {
    let mut after = vec![false; before.len()];
    match token {
        Token::Star => {
            for j in 0..after.len() {
                after[j] = before[j] || (j > 0 && after[j - 1] && chars[j - 1] != '/');
            }
        }
        Token::AnyTail => {
            let mut seen = false;
            for (a, &b) in after.iter_mut().zip(before) {
                seen |= b;
                *a = seen;
            }
        }
        Token::AnyDirs => {
            let mut seen = false;
            for j in 0..after.len() {
                after[j] = before[j] || (seen && chars[j - 1] == '/');
                seen |= before[j];
            }
        }
        single => {
            for (i, &c) in chars.iter().enumerate() {
                if before[i] && single.matches_char(c) {
                    after[i + 1] = true;
                }
            }
        }
    }
    after
}

/// Parses Go `filepath.Match` syntax: `*`, `?`, `[...]` and `\` escapes.
fn parse_glob(pattern: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        let c = chars[pos];
        pos += 1;
        let token = match c {
            '*' if matches!(tokens.last(), Some(Token::Star)) => continue,
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '[' => {
                let (class, next) = Class::parse(&chars, pos, pattern)?;
                pos = next;
                Token::Class(class)
            }
            '\\' => {
                let escaped = *chars
                    .get(pos)
                    .ok_or_else(|| PatternError::bad(pattern, "trailing backslash"))?;
                pos += 1;
                Token::Literal(escaped)
            }
            c => Token::Literal(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Checks a pattern's syntax as Go's `filepath.Match` does.
pub(crate) fn check_glob(pattern: &str) -> Result<(), PatternError> {
    parse_glob(pattern).map(drop)
}

/// Go's `path/filepath.Match` (unix flavour): whether `name` matches
/// `pattern` in full. `*` matches any run of non-`/` characters, `?` one
/// non-`/` character, `[...]` / `[^...]` one character from a class of
/// characters and `lo-hi` ranges, and `\` escapes the next character.
///
/// A malformed pattern is an error whatever `name` is (as in Go 1.16+).
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    Ok(match_tokens(&parse_glob(pattern)?, name))
}

/// Whether a path component contains glob characters (`*`, `?`, `[`) that
/// are not escaped with `\` (fsutil's `containsWildcards`).
pub fn contains_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_reversed_ranges() {
        assert_eq!(glob_match("a[/]b", "a/b"), Ok(true));
        assert_eq!(glob_match("[z-a]", "m"), Ok(false));
        assert_eq!(glob_match("[*?]", "?"), Ok(true));
        assert_eq!(glob_match("**", "a/b"), Ok(false));
    }

    #[test]
    fn many_stars_stay_fast() {
        let name = "a".repeat(2000);
        assert_eq!(glob_match("*a*a*a*a*a*a*a*a*b", &name), Ok(false));
    }

    #[test]
    fn wildcard_detection() {
        assert!(contains_wildcards("Docker*"));
        assert!(contains_wildcards("a?"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards("a\\*"));
        assert!(!contains_wildcards("plain.txt"));
    }
}
