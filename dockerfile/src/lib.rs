//! Dockerfile parser, typed instruction AST and shell-word (variable
//! substitution) engine with the semantics of BuildKit's `dockerfile.v0`
//! frontend (upstream `frontend/dockerfile/{parser,instructions,shell}`,
//! v0.24). Pure logic: no I/O, no LLB.
//!
//! # API
//!
//! ```text
//! pub fn parse(source: &str) -> Result<Dockerfile, ParseError>
//! pub fn parse_instruction(source: &str) -> Result<Instruction, ParseError>   // ONBUILD triggers
//! pub fn parse_ast(source: &str) -> Result<ast::Ast, ParseError>             // low level
//! pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String>
//! pub fn chomp_heredoc_content(content: &str) -> String
//!
//! Dockerfile { directives: Vec<Directive>, escape: char, global_args: Vec<Instruction>,
//!              stages: Vec<Stage>, warnings: Vec<Warning> }
//!   fn stage_index(&self, name_or_index: &str) -> Option<usize>
//!   fn directive(&self, name: &str) -> Option<&str>
//! Stage { name: Option<String>, from: FromInstruction, platform: Option<String>,
//!         instructions: Vec<Instruction>, line: usize }
//! Instruction { kind: InstructionKind, keyword, original, start_line, end_line, comments }
//!   fn name(&self) -> &'static str
//!   fn expands_words(&self) -> bool
//!   fn expand_words<F>(&mut self, F) -> Result<(), ExpandError>     // F: FnMut(&str) -> Result<String, ExpandError>
//!   fn expand_contents<F>(&mut self, F) -> Result<(), ExpandError>  // ADD/COPY heredoc bodies
//! RunInstruction::resolve_mounts<F>(&self, F) -> Result<Vec<Mount>, ExpandError>
//! MountSpec { raw }: resolve<F>(&self, F) -> Result<Mount, ExpandError>; resolve_literal(&self); from_value(&self) -> Option<String>
//! ParseError { line: usize, message: String }   // Display: "Dockerfile:LINE: message"
//!
//! Lexer::new(escape: char) -> Lexer; Lexer::for_heredoc() -> Lexer
//!   .with_raw_quotes(bool) .with_raw_escapes(bool) .with_skip_process_quotes(bool) .with_skip_unset_env(bool)
//!   fn process_word<E: Env + ?Sized>(&self, &str, &E) -> Result<String, ExpandError>
//!   fn process_words<E: Env + ?Sized>(&self, &str, &E) -> Result<Vec<String>, ExpandError>
//!   fn process_word_with_matches<E: Env + ?Sized>(&self, &str, &E) -> Result<ProcessResult, ExpandError>
//! trait Env { fn get(&self, name: &str) -> Option<&str>; }
//!   impls: EmptyEnv, EnvSlice(&[impl AsRef<str>]) ("K=V" list), Vec/[(String, String)],
//!          [(&str, &str)], HashMap/BTreeMap<String, String>, &T
//!
//! // Build checks (module `lint`; see its docs for which rule runs where)
//! pub fn lint(df: &Dockerfile, config: &LintConfig) -> Vec<LintWarning>
//! pub fn lint_with(df: &Dockerfile, config: &LintConfig, ctx: &LintContext) -> Vec<LintWarning>
//! pub fn lint_error(warnings: &[LintWarning], config: &LintConfig) -> Option<String>
//! lint::finish(warnings: Vec<LintWarning>, config: &LintConfig) -> Vec<LintWarning>  // filter + order
//! LintConfig { skip_all, skip: BTreeSet<String>, experimental_all, experimental: BTreeSet<String>, error }
//!   fn parse(spec: &str) -> Result<LintConfig, String>                  // `# check=` syntax
//!   fn from_sources(directive: Option<&str>, build_arg: Option<&str>) -> Result<LintConfig, String>
//!   fn is_enabled(&self, rule: &str) -> bool
//! LintContext { predefined_args: Option<Vec<(String, String)>>, build_args: BTreeMap<String, String>,
//!               stages: Option<BTreeSet<usize>> }                        // Default = text only
//! LintWarning { rule: &'static str, description: &'static str, url: String, message: String,
//!               start_line: usize, end_line: usize }
//!   fn short(&self) -> String                                         // "Rule: msg (line N)"
//! lint::rules::{Rule { name, description, url, experimental }, ALL_RULES, rule_by_name, <RULE consts>,
//!               <rule>_message(..) formatters}
//! lint::converter::{undefined_vars, undefined_var, invalid_base_image_platform, copy_ignored_file}
//! ```
//!
//! # Expansion (done by the converter, with the stage environment)
//!
//! Words stay raw in the AST: quotes, escapes and `$VAR` are untouched.
//! Upstream expands, with `Lexer::new(df.escape).process_word(word, env)`
//! (which also removes quotes, so call it even without variables):
//!
//! | instruction | expanded words |
//! |---|---|
//! | FROM | image and `--platform`, with the global ARGs only |
//! | ENV, LABEL | keys and values |
//! | ARG | default values (only when no build-arg overrides; errors deferred) |
//! | ADD | sources, dest, `--chown`, `--chmod`, `--checksum` |
//! | COPY | sources, dest, `--chown`, `--chmod` (`--from`: never, error if it contains a variable) |
//! | WORKDIR, USER, STOPSIGNAL, VOLUME | the values |
//! | EXPOSE | each port with `process_words` (may split) |
//! | RUN | each `--mount` value ([`MountSpec::resolve`]); not `--network`/`--security`/`--device` |
//! | ADD/COPY heredocs with `expand` | body, with [`Lexer::for_heredoc`] |
//! | CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD, RUN command | nothing |
//!
//! [`Instruction::expand_words`] applies exactly this (except FROM, ARG
//! dispatch rules and EXPOSE) given an expander closure.
//!
//! # Differences from upstream
//!
//! - Error lines are the 1-based first line of the instruction (or of the
//!   directive); upstream reports some directive errors one line early.
//! - `--exclude`, `--parents` and `--security` are always accepted (they
//!   need `-labs` builds in v0.24, and are stable upstream since).
//! - Flag words are split per character, not per byte (upstream mangles
//!   non-ASCII text in flags).
//! - `process_words` keeps the text before a nested `${…:-…}` in the same
//!   field (upstream's shared buffer drops it).
//! - Hostile input is bounded: `${…}` nesting over 128 levels, more than 8
//!   nested ONBUILDs and pathological wildcard patterns are errors.
//! - "did you mean" suggestions pick the first closest option in a fixed
//!   order (upstream iterates a Go map); so does the rule list of
//!   [`lint_error`] (order of first appearance).
//! - Build checks that upstream runs on expanded values during dispatch
//!   skip words containing variables, and assume base images from outside
//!   the Dockerfile set no `Shell` (details in [`lint`](mod@lint)).

pub mod ast;
mod dockerfile;
mod error;
mod instructions;
pub mod lint;
mod parser;
mod quote;
mod shell;
pub mod suggest;

pub use ast::{Directive, Heredoc};
pub use dockerfile::{parse, parse_instruction, Dockerfile, Stage};
pub use error::{ExpandError, ParseError, Warning};
pub use instructions::{
    parse_device, AddInstruction, ArgDef, CommandLine, CopyInstruction, Device, FromInstruction,
    HealthcheckInstruction, Instruction, InstructionKind, KeyValue, Mount, MountSpec, MountType,
    NetworkMode, OnbuildInstruction, RunInstruction, SecurityMode, ShareMode, SourceContent,
};
pub use lint::{lint, lint_error, lint_with, LintConfig, LintContext, LintWarning};
pub use parser::{chomp_heredoc_content, parse_ast, parse_heredoc};
pub use quote::go_quote;
pub use shell::{EmptyEnv, Env, EnvSlice, Lexer, ProcessResult};
