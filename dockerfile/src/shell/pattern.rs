//! Shell wildcard patterns for `${VAR#pat}`, `${VAR%pat}` and
//! `${VAR/pat/repl}`: `*` (any run), `?` (one character) and `\` escapes,
//! no bracket expressions. Upstream converts these to Go regular
//! expressions; this is an equivalent backtracking matcher with Go's
//! leftmost-first preference (wildcards do not match `\n`, like Go's `.`).

use super::matcher::{Matcher, Tok};

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    /// Compiles a pattern; errors on invalid escapes.
    pub(super) fn compile(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match chars.get(i) {
                    // `\}` and `\/` only protect the ${} syntax.
                    Some('}' | '/') => {}
                    Some(&e @ ('*' | '?' | '\\')) => {
                        toks.push(Tok::Lit(e));
                        i += 1;
                    }
                    other => {
                        return Err(format!(
                            "invalid escape '\\{}'",
                            other.copied().unwrap_or('\u{FFFD}')
                        ))
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern { toks })
    }

    fn matcher<'a>(&'a self, text: &'a [char], greedy: bool) -> Matcher<'a> {
        Matcher::new(&self.toks, text, greedy)
    }

    /// Replaces the first (leftmost, longest-preferring) match literally.
    pub(super) fn replace_first(&self, value: &str, replacement: &str) -> Result<String, String> {
        let text: Vec<char> = value.chars().collect();
        Ok(match self.matcher(&text, true).find(0)? {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        })
    }

    /// Replaces all non-overlapping matches like Go's
    /// `Regexp.ReplaceAllString` (including its `$0`/`$$` template syntax).
    pub(super) fn replace_all(&self, value: &str, replacement: &str) -> Result<String, String> {
        let text: Vec<char> = value.chars().collect();
        let mut m = self.matcher(&text, true);
        let (mut out, mut last_end, mut search) = (String::new(), 0, 0);
        while search <= text.len() {
            let Some((s, e)) = m.find(search)? else { break };
            out.extend(&text[last_end..s]);
            if e > last_end || s == 0 {
                let matched: String = text[s..e].iter().collect();
                super::template::expand_template(&mut out, replacement, &matched);
            }
            last_end = e;
            search = if e <= search { search + 1 } else { e };
        }
        out.extend(&text[last_end..]);
        Ok(out)
    }
}

/// Removes the shortest (or longest when `greedy`) prefix of `value`
/// matching `pattern`.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let compiled = Pattern::compile(pattern)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match compiled.matcher(&text, greedy).at(0)? {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// Removes the shortest (or longest) matching suffix: upstream reverses
/// both pattern and subject and trims a prefix.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let reversed_value: String = value.chars().rev().collect();
    let out = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(out.chars().rev().collect())
}

/// Reverses a pattern keeping each `\x` escape pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let n = p.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let o = n - 1 - i;
        if p[i] == '\\' && i + 1 < n {
            out[o - 1] = '\\';
            out[o] = p[i + 1];
            i += 2;
        } else {
            out[o] = p[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_pattern_keeps_escapes() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn invalid_escapes() {
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::compile(p).is_err(), "{p}");
        }
        assert!(Pattern::compile("(()[]{\\}^$.\\*\\?|\\\\").is_ok());
    }

    #[test]
    fn long_patterns_do_not_recurse() {
        let pat = "*a".repeat(20_000);
        let value = "a".repeat(20_000);
        assert_eq!(trim_prefix(&pat, &value, false), Ok(String::new()));
        let hard = trim_prefix(&format!("{pat}b"), &value, true);
        assert_eq!(hard, Err(super::super::matcher::TOO_COMPLEX.to_string()));
        let p = Pattern::compile("*x*y*z").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.replace_all(&"ab".repeat(300), "-"), Ok("ab".repeat(300)));
    }

    #[test]
    fn go_replace_all_empty_matches() {
        let p = Pattern::compile("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.replace_all("ab", "-"), Ok("-a-b-".into()));
        let x = Pattern::compile("x*").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(x.replace_all("axxb", "-"), Ok("a-".into()));
        let star = Pattern::compile("*").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(star.replace_all("ab", "-"), Ok("-".into()));
        assert_eq!(
            star.replace_all("ab", "[$0|${0}|$$|$1|$x]"),
            Ok("[ab|ab|$||]".into())
        );
        assert_eq!(star.replace_all("a\nb", "<$0>"), Ok("<a>\n<b>".into()));
    }
}
