//! Variable expansion hooks mirroring upstream's `Expand`/`ExpandRaw`.
//! The caller supplies the expander (normally `Lexer::process_word` with
//! the stage environment), so this crate stays free of build state.

use super::mount::Mount;
use super::types::{Instruction, InstructionKind, RunInstruction, SourceContent};
use crate::error::ExpandError;

type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, ExpandError>;

impl Instruction {
    /// Whether upstream expands words of this instruction with the stage
    /// environment before dispatching it: ENV, LABEL, ADD, COPY, WORKDIR,
    /// USER, VOLUME, STOPSIGNAL, ARG and RUN (mount values only, see
    /// [`RunInstruction::resolve_mounts`]).
    pub fn expands_words(&self) -> bool {
        use InstructionKind as K;
        matches!(
            self.kind,
            K::Env(_)
                | K::Label(_)
                | K::Add(_)
                | K::Copy(_)
                | K::Workdir(_)
                | K::User(_)
                | K::Volume(_)
                | K::StopSignal(_)
                | K::Arg(_)
                | K::Run(_)
        )
    }

    /// Replaces every word upstream expands with `expand(word)` (upstream
    /// `SupportsSingleWordExpansion.Expand`):
    ///
    /// - ENV, LABEL: keys and values;
    /// - ADD: `--chown`, `--chmod`, `--checksum`, sources, destination;
    /// - COPY: `--chown`, `--chmod`, sources, destination (not `--from`,
    ///   not `--exclude`);
    /// - WORKDIR, USER, STOPSIGNAL: the value; VOLUME: each path;
    /// - ARG: names and defaults (upstream dispatch expands an ARG default
    ///   only when no build-arg overrides it, deferring errors);
    /// - RUN: nothing here, mounts are resolved separately.
    ///
    /// A flag value that expands to the empty string becomes `None`.
    pub fn expand_words<F>(&mut self, mut expand: F) -> Result<(), ExpandError>
    where
        F: FnMut(&str) -> Result<String, ExpandError>,
    {
        expand_kind(&mut self.kind, &mut expand)
    }

    /// Expands heredoc sources of ADD/COPY whose delimiter was unquoted
    /// (upstream `ExpandRaw`; use [`crate::Lexer::for_heredoc`]).
    pub fn expand_contents<F>(&mut self, mut expand: F) -> Result<(), ExpandError>
    where
        F: FnMut(&str) -> Result<String, ExpandError>,
    {
        let contents: &mut Vec<SourceContent> = match &mut self.kind {
            InstructionKind::Add(a) => &mut a.contents,
            InstructionKind::Copy(c) => &mut c.contents,
            _ => return Ok(()),
        };
        for content in contents.iter_mut().filter(|c| c.expand) {
            content.data = expand(&content.data)?;
        }
        Ok(())
    }
}

impl RunInstruction {
    /// Resolves every `--mount`, expanding its values with `expand`.
    pub fn resolve_mounts<F>(&self, mut expand: F) -> Result<Vec<Mount>, ExpandError>
    where
        F: FnMut(&str) -> Result<String, ExpandError>,
    {
        self.mounts.iter().map(|m| m.resolve(&mut expand)).collect()
    }
}

fn expand_kind(kind: &mut InstructionKind, f: Expander<'_>) -> Result<(), ExpandError> {
    use InstructionKind as K;
    match kind {
        K::Env(kvs) | K::Label(kvs) => {
            for kv in kvs {
                kv.key = f(&kv.key)?;
                kv.value = f(&kv.value)?;
            }
        }
        K::Add(a) => {
            for opt in [&mut a.chown, &mut a.chmod, &mut a.checksum] {
                expand_opt(opt, f)?;
            }
            expand_all(&mut a.sources, f)?;
            a.dest = f(&a.dest)?;
        }
        K::Copy(c) => {
            for opt in [&mut c.chown, &mut c.chmod] {
                expand_opt(opt, f)?;
            }
            expand_all(&mut c.sources, f)?;
            c.dest = f(&c.dest)?;
        }
        K::Workdir(s) | K::User(s) | K::StopSignal(s) => *s = f(s)?,
        K::Volume(v) => expand_all(v, f)?,
        K::Arg(args) => {
            for arg in args {
                arg.key = f(&arg.key)?;
                if let Some(d) = &mut arg.default {
                    *d = f(d)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_opt(value: &mut Option<String>, f: Expander<'_>) -> Result<(), ExpandError> {
    if let Some(v) = value.as_deref() {
        let out = f(v)?;
        *value = (!out.is_empty()).then_some(out);
    }
    Ok(())
}

fn expand_all(values: &mut [String], f: Expander<'_>) -> Result<(), ExpandError> {
    for v in values {
        *v = f(v)?;
    }
    Ok(())
}
