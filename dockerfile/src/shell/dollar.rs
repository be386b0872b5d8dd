//! `$VAR` / `${VAR…}` expansion (upstream `processDollar`).

use super::pattern;
use super::word::State;
use super::Env;
use crate::error::ExpandError;

const MISSING_BRACE: &str = "syntax error: missing '}'";

/// Go renders `string(rune(-1))` (end of input) as U+FFFD.
fn modifier_text(ch: Option<char>) -> String {
    ch.unwrap_or('\u{FFFD}').to_string()
}

fn unsupported(chs: &str) -> ExpandError {
    ExpandError::new(format!("unsupported modifier ({chs}) in substitution"))
}

impl<E: Env + ?Sized> State<'_, E> {
    /// Handles a `$` at the current position.
    pub(super) fn process_dollar(&mut self) -> Result<String, ExpandError> {
        self.next();
        if self.peek() != Some('{') {
            return Ok(self.unbraced());
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandError::new(MISSING_BRACE)),
            Some('{' | '}' | ':') => {
                return Err(ExpandError::new("syntax error: bad substitution"))
            }
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        match ch {
            Some('}') => Ok(self.lookup_or_keep(&name, || format!("${{{name}}}"))),
            Some(':') => {
                let op = self.next();
                let chs = format!(":{}", modifier_text(op));
                self.modifier(&name, op, true, &chs)
            }
            Some('+' | '-' | '?' | '#' | '%') => {
                self.modifier(&name, ch, false, &modifier_text(ch))
            }
            Some('/') => self.replace(&name),
            _ => Err(unsupported(&modifier_text(ch))),
        }
    }

    /// `$NAME` without braces.
    fn unbraced(&mut self) -> String {
        let name = self.process_name();
        if name.is_empty() {
            return "$".to_string();
        }
        self.lookup_or_keep(&name, || format!("${name}"))
    }

    /// The value of `name`; when unset, `kept()` under `SkipUnsetEnv`,
    /// otherwise the empty string.
    fn lookup_or_keep(&mut self, name: &str, kept: impl FnOnce() -> String) -> String {
        match self.get_env(name) {
            Some(v) => v,
            None if self.lex.skip_unset_env => kept(),
            None => String::new(),
        }
    }

    /// Reads the operand of a modifier up to the closing brace.
    fn operand(&mut self, stop: char, raw: bool, eof_msg: &str) -> Result<String, ExpandError> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(ExpandError::new(eof_msg)),
            Err(e) => Err(e),
        }
    }

    fn modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        null_is_unset: bool,
        chs: &str,
    ) -> Result<String, ExpandError> {
        let raw = matches!(op, Some('#' | '%'));
        if null_is_unset && raw {
            return Err(unsupported(chs));
        }
        let word = self.operand('}', raw, MISSING_BRACE)?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            Some('-') if empty => Ok(word),
            Some('-') => Ok(value.unwrap_or_default()),
            Some('+') if empty => Ok(String::new()),
            Some('+') => Ok(word),
            Some('?') => required(name, value, null_is_unset, word),
            Some(c @ ('#' | '%')) => trim(c, word, &value.unwrap_or_default()),
            _ => Err(unsupported(chs)),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pat = self.operand('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.operand('}', true, MISSING_BRACE)?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        let compiled = pattern::Pattern::compile(&pat).map_err(|e| {
            ExpandError::new(format!("invalid pattern ({pat}) in substitution: {e}"))
        })?;
        let value = value.unwrap_or_default();
        let out = if all {
            compiled.replace_all(&value, &replacement)
        } else {
            compiled.replace_first(&value, &replacement)
        };
        out.map_err(|e| ExpandError::new(format!("invalid pattern ({pat}) in substitution: {e}")))
    }

    /// Reads a variable name: digits (positional), one special parameter
    /// character, or letters/digits/underscore.
    pub(super) fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    /// Looks `name` up and records it as matched or unmatched.
    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }
}

/// `${NAME?msg}` / `${NAME:?msg}`.
fn required(
    name: &str,
    value: Option<String>,
    null_is_unset: bool,
    word: String,
) -> Result<String, ExpandError> {
    let default_msg = match &value {
        None => "is not allowed to be unset",
        Some(v) if null_is_unset && v.is_empty() => "is not allowed to be empty",
        Some(v) => return Ok(v.clone()),
    };
    let message = if word.is_empty() {
        default_msg.to_string()
    } else {
        word
    };
    Err(ExpandError::new(format!("{name}: {message}")))
}

/// `#`/`##` (prefix) and `%`/`%%` (suffix) removal.
fn trim(op: char, word: String, value: &str) -> Result<String, ExpandError> {
    let (greedy, pat) = match word.strip_prefix(op) {
        Some(rest) => (true, rest.to_string()),
        None => (false, word),
    };
    let out = if op == '%' {
        pattern::trim_suffix(&pat, value, greedy)
    } else {
        pattern::trim_prefix(&pat, value, greedy)
    };
    out.map_err(|e| ExpandError::new(format!("invalid pattern ({pat}) in substitution: {e}")))
}

/// Go `unicode.IsDigit` (approximated by Rust's numeric property).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}
