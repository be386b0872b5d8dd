//! One stage being converted: its LLB state, its image config and its variables, changed by
//! each instruction in turn.

use nodekit_dockerfile::{Instruction, InstructionKind};
use nodekit_llb_builder::{Mkdir, State};
use serde_json::json;

use super::scope::Scope;
use super::{copy, meta, run, Stages};
use crate::frontend::dockerfile::image::StageImage;
use crate::solver::SolveError;

/// The default shell of RUN, CMD and ENTRYPOINT in shell form.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

pub struct StageBuilder<'a> {
    pub state: State,
    pub image: StageImage,
    pub scope: Scope,
    pub stages: &'a Stages,
    /// `[name n/m]`, the prefix of the stage's step names in progress output.
    pub label: String,
    pub step: usize,
    pub steps: usize,
    pub ignore_cache: bool,
    /// A CMD was set in this stage (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl StageBuilder<'_> {
    /// Converts `instruction` (a clone: its words get expanded).
    pub fn apply(&mut self, instruction: &Instruction) -> Result<(), SolveError> {
        self.step += 1;
        self.scope.line = instruction.start_line;
        let mut instruction = instruction.clone();
        let lints = self.scope.expand_instruction_linted(&mut instruction)?;
        self.stages.record_lints(lints);
        let original = instruction.original.trim().to_string();
        match &instruction.kind {
            InstructionKind::Run(r) => run::apply(self, r, &original),
            InstructionKind::Copy(c) => copy::apply_copy(self, c, &original),
            InstructionKind::Add(a) => copy::apply_add(self, a, &original),
            InstructionKind::Workdir(dir) => self.workdir(dir),
            kind => meta::apply(self, kind, &original),
        }
    }

    /// `[stage n/m] text`, as upstream names steps: `n` padded to the width of `m`, no label
    /// for the one stage of a single-stage Dockerfile.
    pub fn step_name(&self, text: &str) -> String {
        let width = self.steps.to_string().len();
        let count = format!("{:>width$}/{}", self.step, self.steps);
        match self.label.as_str() {
            "" => format!("[{count}] {text}"),
            label => format!("[{label} {count}] {text}"),
        }
    }

    pub fn shell(&self) -> Vec<String> {
        match self.image.strings("Shell") {
            shell if !shell.is_empty() => shell,
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// WORKDIR: relative to the current one; created (as upstream does) so later steps can cd.
    fn workdir(&mut self, dir: &str) -> Result<(), SolveError> {
        let dir = if dir.starts_with('/') {
            nodekit_llb::pathutil::clean(dir)
        } else {
            nodekit_llb::pathutil::join(&[&self.current_dir(), dir])
        };
        self.state = self.state.dir(dir.clone());
        self.image.set("WorkingDir", json!(dir));
        let mut mkdir = Mkdir::new(&dir, 0o755).parents(true);
        if let Some(owner) = self.user_chown() {
            mkdir = mkdir.chown(owner);
        }
        let name = self.step_name(&format!("WORKDIR {dir}"));
        let options = self.op_options(&name);
        self.state = self.state.file_with(mkdir, options);
        self.image.add_history(&format!("WORKDIR {dir}"), false);
        Ok(())
    }

    pub fn current_dir(&self) -> String {
        match self.state.get_dir() {
            "" => "/".to_string(),
            dir => dir.to_string(),
        }
    }

    /// The stage's user as a chown for created directories (upstream makes WORKDIR the user's).
    fn user_chown(&self) -> Option<nodekit_llb_builder::Chown> {
        let user = self.image.string("User");
        (!user.is_empty() && user != "root" && user != "0")
            .then(|| nodekit_llb_builder::Chown::parse(&user))
    }

    pub fn op_options(&self, name: &str) -> nodekit_llb_builder::OpOptions {
        self.stages.record_step(name, self.scope.line);
        let options = nodekit_llb_builder::OpOptions::new().custom_name(name);
        if self.ignore_cache {
            options.ignore_cache()
        } else {
            options
        }
    }
}
