//! The graph behind states: shared, immutable op nodes and their outputs.

use std::collections::BTreeSet;
use std::sync::Arc;

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::exec::ExecNode;
use crate::file_op::FileNode;
use crate::merge::{DiffNode, MergeNode};
use crate::options::OpOptions;
use crate::source::SourceNode;

/// One op of the graph being built.
#[derive(Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub opts: OpOptions,
}

#[derive(Debug)]
pub(crate) enum NodeKind {
    Source(SourceNode),
    Exec(Box<ExecNode>),
    File(FileNode),
    Merge(MergeNode),
    Diff(DiffNode),
    /// An already marshalled definition (its ops are written as they are).
    Definition(crate::definition::DefinitionNode),
}

/// Drops the nodes only this one held with a loop, not by recursion: dropping a chain of a
/// few thousand ops (a long Dockerfile) overflowed the thread's stack. The op is taken out and
/// dropped while its inputs are held here, so their drop stops at once; an input held nowhere
/// else is then taken apart the same way.
impl Drop for Node {
    fn drop(&mut self) {
        let mut held = Vec::new();
        take_apart(&mut self.kind, &mut held);
        while let Some(node) = held.pop() {
            if let Some(mut last) = Arc::into_inner(node) {
                take_apart(&mut last.kind, &mut held);
            }
        }
    }
}

/// Drops `kind`'s op, adding the nodes it read to `held` first.
fn take_apart(kind: &mut NodeKind, held: &mut Vec<Arc<Node>>) {
    let empty = NodeKind::Definition(crate::definition::DefinitionNode {
        ops: Vec::new(),
        metadata: Vec::new(),
        output_digest: String::new(),
    });
    let kind = std::mem::replace(kind, empty);
    held.extend(kind_deps(&kind).into_iter().map(|o| o.node.clone()));
}

/// The outputs an op reads, in the order BuildKit's client visits them.
fn kind_deps(kind: &NodeKind) -> Vec<&Output> {
    match kind {
        NodeKind::Source(_) => Vec::new(),
        NodeKind::Exec(exec) => exec.deps(),
        NodeKind::File(file) => file.deps(),
        NodeKind::Merge(merge) => merge.inputs.iter().collect(),
        NodeKind::Diff(diff) => diff.lower.iter().chain(diff.upper.iter()).collect(),
        NodeKind::Definition(_) => Vec::new(),
    }
}

/// One output of a node.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub node: Arc<Node>,
    pub index: i64,
}

impl Output {
    /// Output `index` of a new node.
    pub fn new(node: Node, index: i64) -> Output {
        Output {
            node: Arc::new(node),
            index,
        }
    }

    /// Whether both name the same output of the same node (BuildKit compares outputs by
    /// identity, not by content).
    pub fn same(&self, other: &Output) -> bool {
        Arc::ptr_eq(&self.node, &other.node) && self.index == other.index
    }

    /// The platform a state on this output takes (BuildKit's `output.platform`): the platform
    /// option of the source or exec op that produced it.
    pub fn platform(&self) -> Option<&pb::Platform> {
        match self.node.kind {
            NodeKind::Source(_) | NodeKind::Exec(_) => self.node.opts.platform.as_ref(),
            _ => None,
        }
    }
}

/// A node's identity in the marshaller's tables.
pub(crate) fn node_key(node: &Arc<Node>) -> usize {
    Arc::as_ptr(node) as usize
}

/// Adds `output` to `list` unless the same output is there.
pub(crate) fn push_unique<'a>(list: &mut Vec<&'a Output>, output: &'a Output) {
    if !list.iter().any(|o| o.same(output)) {
        list.push(output);
    }
}

/// An op in protobuf form (without worker constraints) with the capability ids it needs.
pub(crate) struct Lowered {
    pub op: pb::Op,
    pub caps: Vec<&'static str>,
}

/// What lowering a node needs from the marshaller.
pub(crate) trait Resolve {
    /// The `pb.Input` naming an output of an already marshalled node.
    fn input(&self, output: &Output) -> Result<pb::Input, BuildError>;
    /// The platform of ops that have none of their own.
    fn default_platform(&self) -> &pb::Platform;
    /// The `local.unique` value of local sources without a session id, if any.
    fn local_unique_id(&self) -> Option<&str>;
    /// The daemon's LLB capabilities, when the caller gave them.
    fn caps(&self) -> Option<&BTreeSet<String>>;
}

/// An op's input list, optionally de-duplicated as BuildKit's client does.
#[derive(Default)]
pub(crate) struct InputList(pub Vec<pb::Input>);

impl InputList {
    /// Adds `input` unless an equal one is there; returns its index.
    pub fn add(&mut self, input: pb::Input) -> i64 {
        match self.0.iter().position(|i| *i == input) {
            Some(existing) => as_index(existing),
            None => self.push(input),
        }
    }

    /// Appends `input` even if an equal one is there; returns its index.
    pub fn push(&mut self, input: pb::Input) -> i64 {
        self.0.push(input);
        as_index(self.0.len() - 1)
    }

    /// The number of inputs.
    pub fn len(&self) -> i64 {
        as_index(self.0.len())
    }
}

pub(crate) fn as_index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

impl Node {
    /// The outputs this node reads, in the order BuildKit's client visits them.
    pub fn deps(&self) -> Vec<&Output> {
        kind_deps(&self.kind)
    }

    /// The op in protobuf form, its inputs resolved by `r`.
    pub fn lower(&self, r: &dyn Resolve) -> Result<Lowered, BuildError> {
        match &self.kind {
            NodeKind::Source(source) => source.lower(&self.opts, r),
            NodeKind::Exec(exec) => exec.lower(&self.opts, r),
            NodeKind::File(file) => file.lower(r),
            NodeKind::Merge(merge) => merge.lower(r),
            NodeKind::Diff(diff) => diff.lower(r),
            NodeKind::Definition(_) => Err(BuildError::Internal(
                "an embedded definition is written by the marshaller, not lowered".into(),
            )),
        }
    }
}

/// An `Op` with inputs, kind and (for the kinds that have one) platform.
pub(crate) fn op(inputs: InputList, kind: pb::op::Op, platform: Option<pb::Platform>) -> pb::Op {
    pb::Op {
        inputs: inputs.0,
        op: Some(kind),
        platform,
        constraints: None,
    }
}
