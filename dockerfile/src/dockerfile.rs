//! The parsed Dockerfile: directives, global ARGs and build stages.

use crate::ast::{Directive, Node};
use crate::error::{ParseError, Warning};
use crate::instructions::{convert, FromInstruction, Instruction, InstructionKind, Parsed};
use crate::parser::parse_ast;

/// A parsed and validated Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives (`syntax`, `escape`, `check`), in file order.
    pub directives: Vec<Directive>,
    /// Escape token in effect (`\` or `` ` ``); build the [`crate::Lexer`]
    /// for instruction words with it.
    pub escape: char,
    /// ARG instructions before the first FROM (meta args; they are only
    /// visible to FROM lines and to stages that redeclare them).
    pub global_args: Vec<Instruction>,
    /// Build stages in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal parser findings.
    pub warnings: Vec<Warning>,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Stage name from `AS name`, lower-cased.
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: FromInstruction,
    /// `--platform` of the FROM (raw).
    pub platform: Option<String>,
    /// Instructions of the stage.
    pub instructions: Vec<Instruction>,
    /// Line of the FROM (1-based).
    pub line: usize,
}

impl Dockerfile {
    /// Index of the stage named `name_or_index` (case-insensitive), or of
    /// the stage at that numeric index (as `COPY --from=0`).
    pub fn stage_index(&self, name_or_index: &str) -> Option<usize> {
        let by_name = self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name_or_index))
        });
        by_name.or_else(|| {
            name_or_index
                .parse::<usize>()
                .ok()
                .filter(|i| *i < self.stages.len())
        })
    }

    /// The value of a parser directive (`syntax`, `escape`, `check`).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .map(|d| d.value.as_str())
    }
}

/// Parses a Dockerfile into stages of typed instructions.
///
/// Errors are reported in upstream's order: the whole file is split into
/// instructions first (syntax, heredoc and directive errors), then each
/// instruction is validated in turn.
pub fn parse(source: &str) -> Result<Dockerfile, ParseError> {
    let ast = parse_ast(source)?;
    let mut df = Dockerfile {
        directives: ast.directives,
        escape: ast.escape,
        global_args: Vec::new(),
        stages: Vec::new(),
        warnings: ast.warnings,
    };
    for node in &ast.nodes {
        add_node(&mut df, node)?;
    }
    Ok(df)
}

fn add_node(df: &mut Dockerfile, node: &Node) -> Result<(), ParseError> {
    match convert(node)? {
        Parsed::From(from) => df.stages.push(Stage {
            name: from.name.clone(),
            platform: from.platform.clone(),
            line: from.start_line,
            from,
            instructions: Vec::new(),
        }),
        Parsed::Instruction(inst) => match df.stages.last_mut() {
            Some(stage) => stage.instructions.push(inst),
            None if matches!(inst.kind, InstructionKind::Arg(_)) => df.global_args.push(inst),
            None => {
                return Err(ParseError::new(
                    node.start_line,
                    "no build stage in current context",
                ))
            }
        },
    }
    Ok(())
}

/// Parses one instruction, e.g. an ONBUILD trigger stored in a base image
/// config (`RUN echo hi`). FROM is rejected.
pub fn parse_instruction(source: &str) -> Result<Instruction, ParseError> {
    let ast = parse_ast(source)?;
    let [node] = ast.nodes.as_slice() else {
        return Err(ParseError::new(
            1,
            "onbuild trigger should be a single expression",
        ));
    };
    match convert(node)? {
        Parsed::Instruction(inst) => Ok(inst),
        Parsed::From(_) => Err(ParseError::new(
            node.start_line,
            "FROM is not a command type",
        )),
    }
}
