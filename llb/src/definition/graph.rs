//! The loaded graph: vertices keyed by digest, a dependency order, the result.

use std::collections::{BTreeMap, HashMap};

use nodekit_proto::pb;

use super::decode::Decoded;
use super::error::LlbError;
use super::name::{display_name, kind_name};

/// One output of one vertex: what an input edge points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputRef {
    /// `sha256:...` digest of the producing op.
    pub digest: String,
    /// Which of its outputs (checked against the op's output count).
    pub index: u32,
}

/// One validated op of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Vertex {
    /// `sha256:` digest of the op's bytes exactly as sent.
    pub digest: String,
    /// Position of the op in `Definition.def` (its first occurrence).
    pub position: usize,
    /// The decoded op (its `op` is always set).
    pub op: pb::Op,
    /// The op's inputs, in order.
    pub inputs: Vec<OutputRef>,
    /// How many outputs the op has (see [`exec_output_mounts`](super::exec_output_mounts) for
    /// exec ops).
    pub output_count: u32,
    /// The metadata the definition carries for this digest, if any.
    pub metadata: Option<pb::OpMetadata>,
    /// The op's platform as sent (`None`: the worker's default).
    pub platform: Option<pb::Platform>,
    /// Display name: the `llb.customname` description if set, else derived from the op.
    pub name: String,
}

impl Vertex {
    /// The op kind: "exec", "source", "file", "merge", "diff", "build" or "passthrough".
    pub fn kind(&self) -> &'static str {
        self.op.op.as_ref().map_or("unknown", kind_name)
    }
}

/// A validated definition: the vertices the result depends on, in dependency order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    vertices: HashMap<String, Vertex>,
    order: Vec<String>,
    root: Option<OutputRef>,
}

impl Graph {
    /// A graph with no vertices and no result (a definition with no ops).
    pub fn empty() -> Graph {
        Graph::default()
    }

    /// The build result, `None` for an empty graph.
    pub fn root(&self) -> Option<&OutputRef> {
        self.root.as_ref()
    }

    /// The vertex with this digest, if the result depends on it.
    pub fn vertex(&self, digest: &str) -> Option<&Vertex> {
        self.vertices.get(digest)
    }

    /// Digests of all vertices, each after every vertex it depends on (the root's vertex last).
    pub fn topological_order(&self) -> &[String] {
        &self.order
    }

    /// All vertices in [`topological_order`](Self::topological_order).
    pub fn vertices(&self) -> impl Iterator<Item = &Vertex> {
        self.order.iter().filter_map(|d| self.vertices.get(d))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// What `load` has established about each entry of a [`Decoded`] definition.
pub(crate) struct Checked {
    pub decoded: Decoded,
    /// Per entry: its number of outputs (0 for the terminal op).
    pub output_counts: Vec<usize>,
    /// Per entry: (entry index, output) of each input.
    pub inputs: Vec<Vec<(usize, OutputRef)>>,
    /// Entry index and output of the result.
    pub root: (usize, OutputRef),
}

/// Orders the ops (refusing cycles), keeps those the result depends on, names them.
pub(crate) fn build(
    checked: Checked,
    metadata: &BTreeMap<String, pb::OpMetadata>,
) -> Result<Graph, LlbError> {
    let edges: Vec<Vec<usize>> = checked
        .inputs
        .iter()
        .map(|ins| ins.iter().map(|(e, _)| *e).collect())
        .collect();
    let order = dependency_order(&edges, &checked.decoded)?;
    let needed = reachable(&edges, checked.root.0);
    let Checked {
        decoded,
        output_counts,
        mut inputs,
        root,
    } = checked;
    let mut entries: Vec<Option<_>> = decoded.entries.into_iter().map(Some).collect();
    let mut graph = Graph {
        root: Some(root.1),
        ..Graph::default()
    };
    for index in order.into_iter().filter(|&i| needed[i]) {
        let Some(entry) = entries[index].take() else {
            continue;
        };
        let inputs = std::mem::take(&mut inputs[index]);
        let metadata = metadata.get(&entry.digest).cloned();
        let name = display_name(&entry.op, metadata.as_ref(), |i| {
            input_name(&graph, &inputs, i)
        });
        let vertex = Vertex {
            platform: entry.op.platform.clone(),
            output_count: u32::try_from(output_counts[index]).unwrap_or(u32::MAX),
            inputs: inputs.into_iter().map(|(_, out)| out).collect(),
            digest: entry.digest,
            position: entry.position,
            op: entry.op,
            metadata,
            name,
        };
        graph.order.push(vertex.digest.clone());
        graph.vertices.insert(vertex.digest.clone(), vertex);
    }
    Ok(graph)
}

fn input_name(graph: &Graph, inputs: &[(usize, OutputRef)], i: usize) -> String {
    inputs
        .get(i)
        .and_then(|(_, out)| graph.vertex(&out.digest))
        .map(|v| v.name.clone())
        .unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

/// All entries, each after its inputs (depth-first post-order in definition order).
fn dependency_order(edges: &[Vec<usize>], decoded: &Decoded) -> Result<Vec<usize>, LlbError> {
    let mut mark = vec![Mark::New; edges.len()];
    let mut order = Vec::with_capacity(edges.len());
    for start in 0..edges.len() {
        if mark[start] == Mark::New {
            visit(start, edges, &mut mark, &mut order)
                .map_err(|cycle| cycle_error(&cycle, decoded))?;
        }
    }
    Ok(order)
}

/// Iterative depth-first visit; on a cycle, returns the entries on it.
fn visit(
    start: usize,
    edges: &[Vec<usize>],
    mark: &mut [Mark],
    order: &mut Vec<usize>,
) -> Result<(), Vec<usize>> {
    let mut stack = vec![(start, 0usize)];
    mark[start] = Mark::Active;
    while let Some((node, next)) = stack.last_mut() {
        let node = *node;
        let Some(&dep) = edges[node].get(*next) else {
            mark[node] = Mark::Done;
            order.push(node);
            stack.pop();
            continue;
        };
        *next += 1;
        match mark[dep] {
            Mark::New => {
                mark[dep] = Mark::Active;
                stack.push((dep, 0));
            }
            Mark::Active => {
                let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                cycle.push(dep);
                return Err(cycle);
            }
            Mark::Done => {}
        }
    }
    Ok(())
}

fn cycle_error(cycle: &[usize], decoded: &Decoded) -> LlbError {
    let path = cycle
        .iter()
        .map(|&i| {
            (
                decoded.entries[i].position,
                decoded.entries[i].digest.clone(),
            )
        })
        .collect();
    LlbError::Cycle { path }
}

/// Which entries `root` depends on (itself included).
fn reachable(edges: &[Vec<usize>], root: usize) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut todo = vec![root];
    while let Some(node) = todo.pop() {
        if !std::mem::replace(&mut seen[node], true) {
            todo.extend(edges[node].iter().copied());
        }
    }
    seen
}
