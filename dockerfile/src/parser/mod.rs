//! Line-level Dockerfile parser (upstream `frontend/dockerfile/parser`):
//! directives, comments, continuations, heredocs and per-instruction
//! argument splitting into [`Node`]s.

mod directives;
mod heredoc;
mod line_parsers;
mod lines;
mod split;

pub use heredoc::{chomp_heredoc_content, parse_heredoc};

use crate::ast::{Ast, Node};
use crate::error::{ParseError, Warning};
use directives::DirectiveParser;
use lines::Lines;

/// Parses source text into the low-level syntax tree.
pub fn parse_ast(source: &str) -> Result<Ast, ParseError> {
    let mut p = Parser {
        lines: Lines::new(source),
        directives: DirectiveParser::default(),
        escape: '\\',
        nodes: Vec::new(),
        warnings: Vec::new(),
        comments: Vec::new(),
    };
    while let Some(raw) = p.lines.next_line() {
        p.physical_line(raw)?;
    }
    p.finish()
}

struct Parser<'a> {
    lines: Lines<'a>,
    directives: DirectiveParser,
    escape: char,
    nodes: Vec<Node>,
    warnings: Vec<Warning>,
    comments: Vec<String>,
}

impl Parser<'_> {
    /// Handles one line read at instruction level.
    fn physical_line(&mut self, raw: &str) -> Result<(), ParseError> {
        let lineno = self.lines.count;
        let raw = if lineno == 1 {
            lines::discard_bom(raw)
        } else {
            raw
        };
        self.collect_comment(raw);
        let token = lines::trim_newline(raw).trim_start();
        let directive = self
            .directives
            .parse_line(token, lineno)
            .map_err(|m| ParseError::new(lineno, m))?;
        if let Some(d) = directive {
            if d.name == "escape" {
                self.escape =
                    directives::escape_token(&d.value).map_err(|m| ParseError::new(lineno, m))?;
            }
            self.comments.pop();
        }
        let (first, ended) = lines::trim_continuation(lines::trim_comments(token), self.escape);
        if ended && first.is_empty() {
            return Ok(());
        }
        let line = self.read_continuation(first.to_string(), ended);
        self.instruction(line, lineno)
    }

    /// Upstream keeps comment text (minus the first character) to attach
    /// to the next instruction; an empty comment resets the list.
    fn collect_comment(&mut self, raw: &str) {
        if !lines::is_comment(raw) {
            return;
        }
        let mut chars = raw.chars();
        chars.next();
        let comment = chars.as_str().trim();
        if comment.is_empty() {
            self.comments.clear();
        } else {
            self.comments.push(comment.to_string());
        }
    }

    /// Appends continuation lines; comment lines inside are skipped and
    /// empty ones skipped with a warning.
    fn read_continuation(&mut self, mut buf: String, mut ended: bool) -> String {
        let mut had_empty = false;
        while !ended {
            let Some(raw) = self.lines.next_line() else {
                break;
            };
            if lines::is_comment(raw) {
                continue;
            }
            let token = lines::trim_newline(raw);
            if lines::is_empty_continuation_line(token) {
                had_empty = true;
                continue;
            }
            let (part, end) = lines::trim_continuation(token, self.escape);
            buf.push_str(part);
            ended = end;
        }
        if had_empty {
            self.warnings.push(Warning {
                line: self.lines.count,
                message: format!("Empty continuation line found in: {buf}"),
            });
        }
        buf
    }

    /// Parses a logical line and reads the heredoc bodies it announces.
    fn instruction(&mut self, line: String, start: usize) -> Result<(), ParseError> {
        let comments = std::mem::take(&mut self.comments);
        let mut node = line_parsers::node_from_line(&line, self.escape, comments)
            .map_err(|m| ParseError::new(start, m))?;
        if can_contain_heredoc(&node) && line.contains("<<") {
            let docs = heredoc::heredocs_from_line(&line).map_err(|m| ParseError::new(start, m))?;
            for mut doc in docs {
                doc.content = self.heredoc_body(&doc.name, doc.chomp, start)?;
                node.heredocs.push(doc);
            }
        }
        node.start_line = start;
        node.end_line = self.lines.count;
        self.nodes.push(node);
        Ok(())
    }

    /// Reads lines up to the terminator; returns the body.
    fn heredoc_body(
        &mut self,
        name: &str,
        chomp: bool,
        start: usize,
    ) -> Result<String, ParseError> {
        let mut content = String::new();
        while let Some(raw) = self.lines.next_line() {
            let mut candidate = lines::trim_newline(raw);
            if chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == name {
                return Ok(content);
            }
            content.push_str(raw);
        }
        Err(ParseError::new(start, "unterminated heredoc"))
    }

    fn finish(self) -> Result<Ast, ParseError> {
        if self.nodes.is_empty() {
            return Err(ParseError::new(
                self.lines.count.max(1),
                "file with no instructions",
            ));
        }
        if self.lines.too_long {
            return Err(ParseError::new(
                self.lines.count + 1,
                format!(
                    "dockerfile line greater than max allowed size of {}",
                    lines::MAX_LINE
                ),
            ));
        }
        Ok(Ast {
            nodes: self.nodes,
            directives: self.directives.found,
            escape: self.escape,
            warnings: self.warnings,
        })
    }
}

/// RUN, COPY and ADD (also wrapped in ONBUILD) in shell form may carry
/// heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match &node.sub {
        Some(sub) if node.command.eq_ignore_ascii_case("onbuild") => sub,
        _ => node,
    };
    let cmd = target.command.to_lowercase();
    matches!(cmd.as_str(), "add" | "copy" | "run") && !target.json
}
