//! The character-level state machine behind [`Lexer`]: quotes, escapes,
//! heredoc markers and word splitting. `$` handling lives in `dollar.rs`.

use std::collections::BTreeSet;

use super::fields::Words;
use super::{Env, Lexer};
use crate::error::ExpandError;

/// Processing state for one input word.
pub(super) struct State<'a, E: ?Sized> {
    pub(super) lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    pub(super) env: &'a E,
    pub(super) raw_escapes: bool,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
    depth: usize,
}

/// Nesting limit for `${…${…}}` and quotes inside them (upstream has none;
/// this bounds recursion on hostile input).
const MAX_DEPTH: usize = 128;

type Processed = (String, Vec<String>);

impl<'a, E: Env + ?Sized> State<'a, E> {
    pub(super) fn new(lex: &'a Lexer, word: &str, env: &'a E) -> Self {
        State {
            lex,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: lex.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(super) fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// Processes input up to `stop` (consumed) or the end of input, with
    /// `raw_escapes` in effect meanwhile (upstream `processStopOn`).
    pub(super) fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<Processed, ExpandError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExpandError::new("variable substitution nested too deeply"));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        out
    }

    fn stop_on(&mut self, stop: Option<char>) -> Result<Processed, ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            if let Some(special) = self.special(ch)? {
                result.push_str(&special);
                if ch == '$' {
                    words.add_string(&special);
                } else {
                    words.add_raw_string(&special);
                }
                continue;
            }
            if !self.plain_char(&mut result, &mut words) {
                break;
            }
        }
        match stop {
            Some(c) => Err(ExpandError::new(format!(
                "unexpected end of statement while looking for matching {c}"
            ))),
            None => Ok((result, words.finish())),
        }
    }

    /// Runs the handler of a special character, if `ch` is one.
    fn special(&mut self, ch: char) -> Result<Option<String>, ExpandError> {
        let quotes = !self.lex.skip_process_quotes;
        match ch {
            '$' => self.process_dollar().map(Some),
            '<' => Ok(Some(self.process_possible_heredoc())),
            '\'' if quotes => self.process_single_quote().map(Some),
            '"' if quotes => self.process_double_quote().map(Some),
            _ => Ok(None),
        }
    }

    /// Consumes an ordinary character (or escape pair). Returns false when
    /// input ended right after an escape token.
    fn plain_char(&mut self, result: &mut String, words: &mut Words) -> bool {
        let Some(ch) = self.next() else { return false };
        if ch != self.lex.escape {
            words.add_char(ch);
            result.push(ch);
            return true;
        }
        if self.raw_escapes {
            words.add_raw_char(ch);
            result.push(ch);
        }
        match self.next() {
            Some(escaped) => {
                words.add_raw_char(escaped);
                result.push(escaped);
                true
            }
            None => false,
        }
    }

    fn process_single_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::new(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::new(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => self.double_quoted_char(&mut result),
            }
        }
    }

    /// One character inside double quotes: the escape token only escapes
    /// `"`, `$` and itself; otherwise it stays literal.
    fn double_quoted_char(&mut self, result: &mut String) {
        let Some(mut ch) = self.next() else { return };
        if ch == self.lex.escape {
            if self.raw_escapes {
                result.push(ch);
            }
            match self.peek() {
                None => return,
                Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                    self.pos += 1;
                    ch = c;
                }
                Some(_) => {}
            }
        }
        result.push(ch);
    }

    /// `<<` followed by blanks stays together so that `<< EOF` remains one
    /// field (upstream `processPossibleHeredoc`).
    fn process_possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut result = "<<".to_string();
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(c);
            self.pos += 1;
        }
        result
    }
}
