//! Shell-word processing: quote removal, escapes and `$VAR` expansion with
//! the semantics of upstream BuildKit's `frontend/dockerfile/shell` (`Lex`).

mod dollar;
mod env;
mod fields;
mod matcher;
mod pattern;
mod template;
mod word;

use std::collections::BTreeSet;

pub use env::{EmptyEnv, Env, EnvSlice};

use crate::error::ExpandError;

/// Shell-word lexer (upstream `shell.Lex`).
///
/// Processes quotes (`'…'`, `"…"`), the escape token (`\` or `` ` ``) and
/// variable references (`$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`,
/// `${VAR:+w}`, `${VAR+w}`, `${VAR:?m}`, `${VAR?m}`, `${VAR#p}`,
/// `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`).
///
/// The options mirror upstream's public fields and default to `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset_env: bool,
}

/// Everything one processing pass produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessResult {
    /// The processed word, inner whitespace kept (upstream `ProcessWord`).
    pub result: String,
    /// The processed word split into fields (upstream `ProcessWords`).
    pub words: Vec<String>,
    /// Variables that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Variables that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as escape token.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The lexer upstream uses for heredoc bodies of ADD/COPY:
    /// escape `\\`, quotes are ordinary characters.
    pub fn for_heredoc() -> Self {
        Lexer::new('\\').with_skip_process_quotes(true)
    }

    /// Keep quote characters in the output (upstream `RawQuotes`).
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape tokens in the output (upstream `RawEscapes`).
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (upstream `SkipProcessQuotes`;
    /// used for heredoc bodies).
    pub fn with_skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written (upstream
    /// `SkipUnsetEnv`).
    pub fn with_skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// The escape token.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string (upstream `ProcessWord`).
    pub fn process_word<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<String, ExpandError> {
        self.process(word, env).map(|r| r.result)
    }

    /// Expands `word` and splits it into fields (upstream `ProcessWords`):
    /// unquoted whitespace (including whitespace coming from variable
    /// values) separates fields; empty fields are dropped.
    pub fn process_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ExpandError> {
        self.process(word, env).map(|r| r.words)
    }

    /// Like [`Lexer::process_word`] but also reports which variables were
    /// used (upstream `ProcessWordWithMatches`).
    pub fn process_word_with_matches<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<ProcessResult, ExpandError> {
        self.process(word, env)
    }

    fn process<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<ProcessResult, ExpandError> {
        let mut state = word::State::new(self, word, env);
        match state.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(ProcessResult {
                result,
                words,
                matched: state.matched,
                unmatched: state.unmatched,
            }),
            Err(e) => Err(ExpandError::new(format!(
                "failed to process {}: {}",
                crate::quote::go_quote(word),
                e.message
            ))),
        }
    }
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}
