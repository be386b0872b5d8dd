//! One dockerignore-style pattern, compiled the way moby's patternmatcher
//! compiles it.
//!
//! Upstream turns a pattern into a Go regexp, with three fast paths that
//! skip the regexp (and that have semantics of their own, kept here):
//! no wildcard at all is an exact comparison; `literal**` at the end is a
//! prefix test (`dir/**` matches `dir/x` but not `dir`); and a pattern
//! starting with `**` that has no other wildcard is a suffix test
//! (`**/foo` matches `a/foo` and `foo`; `**foo` matches `xfoo`).
//!
//! Instead of a regexp this crate runs [`Token`]s with the same meaning.
//! The differences from upstream are limited to patterns whose regexp is
//! accidental: inside `[...]` every character is a class member (upstream
//! copies `*` and `?` into the class as regexp fragments), `\x` is always
//! the literal `x` (upstream emits the regexp escape `\x`, so `\d` means a
//! digit), and `^` outside a class is a literal (upstream emits an anchor
//! that can never match).

use std::fmt;

use crate::glob::{match_tokens, Class, Token};
use crate::PatternError;

/// How a compiled pattern is tested.
#[derive(Debug, Clone)]
enum Matcher {
    /// The path must equal the pattern.
    Exact,
    /// The path must start with this (the pattern without its final `**`).
    Prefix(String),
    /// The path must end with this (the pattern without its leading `**`),
    /// or, when it starts with `/`, equal the rest.
    Suffix(String),
    /// The path must match the tokens in full.
    Tokens(Vec<Token>),
}

/// One cleaned pattern of a [`crate::PatternMatcher`].
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    /// Compiles a cleaned pattern (without its `!`).
    pub(crate) fn compile(text: String, exclusion: bool) -> Result<Pattern, PatternError> {
        let matcher = compile(&text)?;
        Ok(Pattern {
            text,
            exclusion,
            matcher,
        })
    }

    /// The cleaned pattern, without the leading `!` of an exception
    /// (upstream's `Pattern.String()`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception, which re-includes what earlier
    /// patterns matched.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether this pattern alone matches `path` itself (parent
    /// directories are not considered).
    pub fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Tokens(tokens) => match_tokens(tokens, path),
        }
    }

    /// Whether this pattern matches `path` or one of its parent directories.
    pub(crate) fn matches_self_or_parent(&self, path: &str) -> bool {
        self.matches(path)
            || path
                .match_indices('/')
                .any(|(i, _)| self.matches(&path[..i]))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// Which of upstream's match types the scan has settled on so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

/// Upstream's `compile`, producing tokens instead of a regexp.
fn compile(text: &str) -> Result<Matcher, PatternError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut pos = 0;
    let mut first = true;
    while pos < chars.len() {
        let c = chars[pos];
        pos += 1;
        match c {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                // `**/` is the same as `**`.
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos < chars.len() {
                    tokens.push(Token::AnyDirs);
                    detected = Detected::Tokens;
                } else if detected == Detected::Exact {
                    detected = Detected::Prefix;
                } else {
                    tokens.push(Token::AnyTail);
                    detected = Detected::Tokens;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Tokens;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                detected = Detected::Tokens;
            }
            '\\' => {
                // A trailing backslash was already refused by the syntax check.
                let escaped = chars.get(pos).copied().unwrap_or('\\');
                pos += 1;
                tokens.push(Token::Literal(escaped));
                detected = Detected::Tokens;
            }
            '[' => {
                let (class, next) = Class::parse(&chars, pos, text)?;
                if class.has_reversed_range() {
                    return Err(PatternError::bad(
                        text,
                        "character class range is out of order",
                    ));
                }
                pos = next;
                tokens.push(Token::Class(class));
                detected = Detected::Tokens;
            }
            ']' => {
                tokens.push(Token::Literal(']'));
                detected = Detected::Tokens;
            }
            c => tokens.push(Token::Literal(c)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Matcher::Exact,
        Detected::Prefix => Matcher::Prefix(strip_last_two(text)),
        Detected::Suffix => Matcher::Suffix(text.chars().skip(2).collect()),
        Detected::Tokens => Matcher::Tokens(tokens),
    })
}

/// The text without its final `**`.
fn strip_last_two(text: &str) -> String {
    let mut s = text.to_string();
    s.pop();
    s.pop();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> &'static str {
        match compile(text).unwrap() {
            Matcher::Exact => "exact",
            Matcher::Prefix(_) => "prefix",
            Matcher::Suffix(_) => "suffix",
            Matcher::Tokens(_) => "tokens",
        }
    }

    /// Upstream's `compileTests`: the match type chosen for each pattern.
    #[test]
    fn match_types_follow_upstream() {
        let cases = [
            ("*", "tokens"),
            ("file*", "tokens"),
            ("*file", "tokens"),
            ("a*/b", "tokens"),
            ("**", "suffix"),
            ("**/**", "tokens"),
            ("dir/**", "prefix"),
            ("**/dir", "suffix"),
            ("**/dir2/*", "tokens"),
            ("**/dir2/**", "tokens"),
            ("**file", "suffix"),
            ("**/file*txt", "tokens"),
            ("**/**/*.txt", "tokens"),
            ("a[b-d]e", "tokens"),
            (".*", "tokens"),
            ("abc.def", "exact"),
            ("abc?def", "tokens"),
            ("**/foo/bar", "suffix"),
            ("a(b)c/def", "exact"),
            ("a.|)$(}+{bc", "exact"),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "exact",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(kind(text), want, "pattern {text:?}");
        }
    }

    #[test]
    fn reversed_class_range_is_refused() {
        assert!(Pattern::compile("[Local-Only]".into(), false).is_err());
    }
}
