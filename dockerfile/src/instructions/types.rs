//! Typed instructions (upstream `instructions.*Command`).
//!
//! All word values are raw: quotes, escapes and `$VAR` references are
//! still in place. See the crate docs for which fields the converter must
//! expand (and how).

use std::time::Duration;

use super::mount::MountSpec;
use super::run::{Device, NetworkMode, SecurityMode};
use crate::ast::Heredoc;
use crate::error::ParseError;

/// One instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The typed payload.
    pub kind: InstructionKind,
    /// Keyword as written (`RUN`, `run`, …).
    pub keyword: String,
    /// Logical line (continuations joined, comment lines removed, heredoc
    /// bodies excluded); upstream uses its trimmed form for progress names.
    pub original: String,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line including heredoc bodies (1-based).
    pub end_line: usize,
    /// Comment lines directly above the instruction (without `#`).
    pub comments: Vec<String>,
}

/// The instruction kinds other than FROM (FROM starts a [`crate::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// `RUN`.
    Run(RunInstruction),
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `SHELL ["exe", "arg"]` (JSON only).
    Shell(Vec<String>),
    /// `ENV` pairs in order.
    Env(Vec<KeyValue>),
    /// `LABEL` pairs in order.
    Label(Vec<KeyValue>),
    /// `ARG name[=default] …`.
    Arg(Vec<ArgDef>),
    /// `EXPOSE` ports, sorted as strings (as upstream), unexpanded.
    Expose(Vec<String>),
    /// `VOLUME` paths (each trimmed, non-empty).
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `STOPSIGNAL signal`.
    StopSignal(String),
    /// `MAINTAINER name` (deprecated).
    Maintainer(String),
    /// `ADD`.
    Add(AddInstruction),
    /// `COPY`.
    Copy(CopyInstruction),
    /// `ONBUILD <instruction>`.
    Onbuild(OnbuildInstruction),
    /// `HEALTHCHECK`.
    Healthcheck(HealthcheckInstruction),
}

/// A command in shell or exec form (upstream `ShellDependantCmdLine`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the JSON elements. Shell form: at most one element, the
    /// command text (none when the instruction had no arguments).
    pub args: Vec<String>,
    /// Shell form: the stage's shell (`SHELL`, default `/bin/sh -c`) must
    /// be prepended.
    pub prepend_shell: bool,
}

/// A `key=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Raw key.
    pub key: String,
    /// Raw value (quotes kept; the legacy form keeps the whole rest).
    pub value: String,
    /// Legacy `KEY value` form (no `=`).
    pub legacy: bool,
}

/// One `ARG` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// Raw name.
    pub key: String,
    /// Raw default value, if `=` was given (possibly empty).
    pub default: Option<String>,
}

/// `RUN` and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInstruction {
    /// The command.
    pub command: CommandLine,
    /// Heredocs of the line (bodies not chomped; see
    /// [`crate::chomp_heredoc_content`]).
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values; resolve each with [`MountSpec::resolve`].
    pub mounts: Vec<MountSpec>,
    /// `--network` (validated, not expandable).
    pub network: NetworkMode,
    /// `--security` (validated, not expandable).
    pub security: SecurityMode,
    /// `--device` values (not expandable).
    pub devices: Vec<Device>,
    /// Names of the flags that were given, in order.
    pub flags_used: Vec<String>,
}

/// Inline file content of ADD/COPY from a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// File name (the heredoc delimiter).
    pub path: String,
    /// Body, already chomped for `<<-`.
    pub data: String,
    /// Expand variables in `data` (delimiter was not quoted); use a lexer
    /// with escape `\` and [`crate::Lexer::with_skip_process_quotes`].
    pub expand: bool,
}

/// `ADD` and its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddInstruction {
    /// Source paths / URLs (raw).
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination (raw).
    pub dest: String,
    /// `--chown` (raw; an empty value counts as not given).
    pub chown: Option<String>,
    /// `--chmod` (raw).
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum` (raw).
    pub checksum: Option<String>,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
    /// `--exclude` patterns (not expanded upstream).
    pub excludes: Vec<String>,
}

/// `COPY` and its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInstruction {
    /// Source paths (raw).
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<SourceContent>,
    /// Destination (raw).
    pub dest: String,
    /// `--from` stage name, index or image (never expanded upstream).
    pub from: Option<String>,
    /// `--chown` (raw).
    pub chown: Option<String>,
    /// `--chmod` (raw).
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns (not expanded upstream).
    pub excludes: Vec<String>,
}

/// `ONBUILD` trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnbuildInstruction {
    /// Text stored in the image config `OnBuild` list: the line without
    /// `ONBUILD`, plus heredoc bodies and terminators.
    pub expression: String,
    /// The wrapped instruction, typed. Upstream only validates it when the
    /// trigger runs in a child build, so a failure here is not an error of
    /// this Dockerfile.
    pub trigger: Result<Box<Instruction>, ParseError>,
}

/// `HEALTHCHECK` as the image config `Healthcheck` expects it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthcheckInstruction {
    /// `["NONE"]`, `["CMD", args…]` (exec form) or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// `--interval` (zero = not set).
    pub interval: Duration,
    /// `--timeout` (zero = not set).
    pub timeout: Duration,
    /// `--start-period` (zero = not set).
    pub start_period: Duration,
    /// `--start-interval` (zero = not set).
    pub start_interval: Duration,
    /// `--retries` (zero = not set).
    pub retries: u32,
}
