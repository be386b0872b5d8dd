//! Low-level syntax tree (upstream `parser.Node`): one [`Node`] per
//! instruction with its raw arguments, before typed validation.
//!
//! Most callers want [`crate::parse`]; this layer is public for tooling
//! and for comparing against upstream's `Dump()` output.

use crate::error::Warning;
use crate::quote::go_quote;

/// A heredoc attached to an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Delimiter word with quotes removed (also the file name for COPY/ADD).
    pub name: String,
    /// Leading file descriptor digits (`3<<EOF`), 0 when absent.
    pub file_descriptor: u64,
    /// False when any part of the delimiter was quoted (`<<'EOF'`): the
    /// body must not be variable-expanded.
    pub expand: bool,
    /// `<<-EOF`: leading tabs are stripped from body lines (see
    /// [`crate::chomp_heredoc_content`]); the terminator may be indented
    /// with tabs.
    pub chomp: bool,
    /// Body lines, each with its original line ending, terminator excluded.
    pub content: String,
}

/// A parser directive from the top of the file (`# syntax=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// Value with surrounding whitespace removed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// One instruction as split by the line parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Instruction keyword as written (`RUN`, `copy`, …).
    pub command: String,
    /// `--flag[=value]` words before the arguments, quotes removed.
    pub flags: Vec<String>,
    /// Arguments as upstream lays them out: JSON elements; shell-form text;
    /// whitespace-separated words; `key value sep` triples for ENV/LABEL
    /// (`sep` is `=` or empty for the legacy `KEY value` form); for
    /// HEALTHCHECK the type word followed by the command.
    pub args: Vec<String>,
    /// ONBUILD: the wrapped instruction.
    pub sub: Option<Box<Node>>,
    /// Arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredocs read after this instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line: continuation lines joined, comment lines dropped.
    pub original: String,
    /// First source line (1-based).
    pub start_line: usize,
    /// Last source line including heredoc bodies (1-based).
    pub end_line: usize,
    /// Comment lines directly preceding the instruction (without `#`).
    pub comments: Vec<String>,
}

/// Result of [`crate::parse_ast`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// Parser directives found at the top of the file.
    pub directives: Vec<Directive>,
    /// Escape token in effect (`\` or `` ` ``).
    pub escape: char,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Node {
    /// Upstream `Node.Dump()` s-expression for this instruction, e.g.
    /// `copy ["--from=a"] "x" "/y"`.
    pub fn dump(&self) -> String {
        let mut out = self.command.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(sub) = &self.sub {
            out.push_str(&format!(" ({})", sub.dump()));
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        out.trim().to_string()
    }
}

impl Ast {
    /// Upstream root `Dump()`: one `(…)` line per instruction.
    pub fn dump(&self) -> String {
        let all: String = self
            .nodes
            .iter()
            .map(|n| format!("({})\n", n.dump()))
            .collect();
        all.trim().to_string()
    }
}
