//! Merge and diff ops (BuildKit's `llb.Merge` and `llb.Diff`).

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::node::{op, InputList, Lowered, Node, NodeKind, Output, Resolve};
use crate::options::OpOptions;
use crate::source::scratch;
use crate::state::State;

/// A merge op: its inputs layered in order.
#[derive(Debug)]
pub(crate) struct MergeNode {
    pub inputs: Vec<Output>,
}

/// A diff op: what changed from `lower` to `upper` (None: scratch).
#[derive(Debug)]
pub(crate) struct DiffNode {
    pub lower: Option<Output>,
    pub upper: Option<Output>,
}

/// Layers `states` on each other, later ones on top. Scratch inputs are dropped; with one
/// input left, that state is the result; with none, scratch. The result has the first input's
/// settings.
pub fn merge(states: &[State]) -> State {
    merge_with(states, OpOptions::default())
}

/// [`merge`] with op options.
pub fn merge_with(states: &[State], opts: OpOptions) -> State {
    let inputs: Vec<&State> = states.iter().filter(|s| !s.is_scratch()).collect();
    let (first, outputs) = match inputs.as_slice() {
        [] => return scratch(),
        [only] => return (*only).clone(),
        [first, ..] => (
            *first,
            inputs.iter().filter_map(|s| s.output.clone()).collect(),
        ),
    };
    let node = Node {
        kind: NodeKind::Merge(MergeNode { inputs: outputs }),
        opts,
    };
    first.with_output(Output::new(node, 0))
}

/// The changes that turn `lower` into `upper`. With a scratch `lower` that is `upper` itself
/// (scratch if both are). The result has `lower`'s settings.
pub fn diff(lower: &State, upper: &State) -> State {
    diff_with(lower, upper, OpOptions::default())
}

/// [`diff`] with op options.
pub fn diff_with(lower: &State, upper: &State, opts: OpOptions) -> State {
    let Some(lower_output) = lower.output.clone() else {
        return if upper.is_scratch() {
            scratch()
        } else {
            upper.clone()
        };
    };
    let diff = DiffNode {
        lower: Some(lower_output),
        upper: upper.output.clone(),
    };
    let node = Node {
        kind: NodeKind::Diff(diff),
        opts,
    };
    lower.with_output(Output::new(node, 0))
}

impl MergeNode {
    /// Every input is its own op input, even when repeated.
    pub fn lower(&self, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        let mut inputs = InputList::default();
        let mut merge = pb::MergeOp::default();
        for output in &self.inputs {
            let input = inputs.push(r.input(output)?);
            merge.inputs.push(pb::MergeInput { input });
        }
        let op = op(inputs, pb::op::Op::Merge(merge), None);
        let caps = vec!["mergeop"];
        Ok(Lowered { op, caps })
    }
}

impl DiffNode {
    /// Lower first, then upper; a scratch side is -1 and takes no input.
    pub fn lower(&self, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        let mut inputs = InputList::default();
        let mut side = |output: &Option<Output>| -> Result<i64, BuildError> {
            match output {
                Some(output) => Ok(inputs.push(r.input(output)?)),
                None => Ok(-1),
            }
        };
        let lower = side(&self.lower)?;
        let upper = side(&self.upper)?;
        let diff = pb::DiffOp {
            lower: Some(pb::LowerDiffInput { input: lower }),
            upper: Some(pb::UpperDiffInput { input: upper }),
        };
        let op = op(inputs, pb::op::Op::Diff(diff), None);
        let caps = vec!["diffop"];
        Ok(Lowered { op, caps })
    }
}
