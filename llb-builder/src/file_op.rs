//! File ops: a chain of file actions run on a state (BuildKit's `FileOp`), and their protobuf
//! form with the input numbering BuildKit's client uses.

use std::collections::HashMap;
use std::sync::Arc;

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::file::{Action, CopySource, FileAction};
use crate::file_proto::proto_action;
use crate::node::{as_index, op, push_unique, InputList, Lowered, Node, NodeKind, Output, Resolve};
use crate::options::OpOptions;
use crate::state::State;

/// A file op: `actions` bound to `state`.
#[derive(Debug)]
pub(crate) struct FileNode {
    pub actions: FileAction,
    pub state: State,
}

impl State {
    /// Runs a chain of file actions on this state; the result is the last action's.
    pub fn file(&self, actions: impl Into<FileAction>) -> State {
        self.file_with(actions, OpOptions::default())
    }

    /// [`file`](State::file) with op options (name, cache hints, …).
    pub fn file_with(&self, actions: impl Into<FileAction>, opts: OpOptions) -> State {
        let file = FileNode {
            actions: actions.into(),
            state: self.clone(),
        };
        let node = Node {
            kind: NodeKind::File(file),
            opts,
        };
        self.with_output(Output::new(node, 0))
    }
}

impl FileNode {
    /// The outputs the actions read, in BuildKit's order (last action first).
    pub fn deps(&self) -> Vec<&Output> {
        let mut deps = Vec::new();
        all_outputs(&self.state, &self.actions, &mut deps);
        deps
    }

    /// The file op: actions in dependency order; only the last one has an output.
    pub fn lower(&self, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        let mut plan = Plan {
            r,
            visited: HashMap::new(),
            inputs: InputList::default(),
            actions: Vec::new(),
        };
        plan.add(0, &self.state, &self.actions)?;
        let inputs = plan.inputs.len();
        let last = plan.actions.len().saturating_sub(1);
        let actions = plan
            .actions
            .iter()
            .enumerate()
            .map(|(i, planned)| pb::FileAction {
                input: planned.input.resolve(inputs),
                secondary_input: planned.secondary.resolve(inputs),
                output: if i == last { 0 } else { -1 },
                action: Some(proto_action(
                    &planned.fa.0.action,
                    planned.state,
                    planned.base,
                )),
            });
        let file = pb::FileOp {
            actions: actions.collect(),
        };
        let op = op(plan.inputs, pb::op::Op::File(file), None);
        let caps = vec!["file.base"];
        Ok(Lowered { op, caps })
    }
}

/// The outputs a chain bound to `state` reads, from its last action to its first.
fn all_outputs<'a>(state: &'a State, actions: &'a FileAction, out: &mut Vec<&'a Output>) {
    let mut current = Some(actions);
    while let Some(fa) = current {
        if let Some(output) = &state.output {
            push_unique(out, output);
        }
        if let Action::Copy(copy) = &fa.0.action {
            match &copy.source {
                CopySource::State(source) => source.output.iter().for_each(|o| push_unique(out, o)),
                CopySource::Actions(bound) => all_outputs(&bound.state, &bound.actions, out),
            }
        }
        current = fa.0.prev.as_ref();
    }
}

/// Where an action reads from: an op input (or -1, scratch), or an earlier action's result.
#[derive(Clone, Copy)]
enum Slot {
    Input(i64),
    Action(usize),
}

impl Slot {
    /// The index in the file op's index space: actions come after the op's inputs.
    fn resolve(self, inputs: i64) -> i64 {
        match self {
            Slot::Input(i) => i,
            Slot::Action(a) => inputs + as_index(a),
        }
    }
}

struct Planned<'a> {
    fa: &'a FileAction,
    state: &'a State,
    /// The op input of the state the action is bound to (-1: scratch).
    base: i64,
    input: Slot,
    secondary: Slot,
}

/// Orders the actions of a file op and numbers its inputs (BuildKit's `marshalState`).
struct Plan<'a> {
    r: &'a dyn Resolve,
    /// (binding, action) -> position; binding 0 is the op's own chain.
    visited: HashMap<(usize, usize), usize>,
    inputs: InputList,
    actions: Vec<Planned<'a>>,
}

impl<'a> Plan<'a> {
    fn add(
        &mut self,
        binding: usize,
        state: &'a State,
        fa: &'a FileAction,
    ) -> Result<usize, BuildError> {
        let key = (binding, Arc::as_ptr(&fa.0) as usize);
        if let Some(&target) = self.visited.get(&key) {
            return Ok(target);
        }
        let prev = match &fa.0.prev {
            Some(prev) => Some(self.add(binding, state, prev)?),
            None => None,
        };
        let base = self.input_of(state.output.as_ref())?;
        let input = prev.map_or(Slot::Input(base), Slot::Action);
        let secondary = match &fa.0.action {
            Action::Copy(copy) => self.copy_source(&copy.source)?,
            _ => Slot::Input(-1),
        };
        let target = self.actions.len();
        self.visited.insert(key, target);
        self.actions.push(Planned {
            fa,
            state,
            base,
            input,
            secondary,
        });
        Ok(target)
    }

    fn copy_source(&mut self, source: &'a CopySource) -> Result<Slot, BuildError> {
        match source {
            CopySource::State(s) => Ok(Slot::Input(self.input_of(s.output.as_ref())?)),
            CopySource::Actions(bound) => {
                let binding = Arc::as_ptr(bound) as usize;
                let target = self.add(binding, &bound.state, &bound.actions)?;
                Ok(Slot::Action(target))
            }
        }
    }

    /// The op input for `output` (added once), or -1 for scratch.
    fn input_of(&mut self, output: Option<&Output>) -> Result<i64, BuildError> {
        match output {
            Some(output) => Ok(self.inputs.add(self.r.input(output)?)),
            None => Ok(-1),
        }
    }
}
