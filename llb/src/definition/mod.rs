//! Loading a `pb::Definition` sent by a client: decode every op, digest its exact bytes, check
//! every field and edge, and return the [`Graph`] the result depends on.
//!
//! What is checked, and where BuildKit (`solver/llbsolver/vertex.go`) is the model:
//! - `def` is not empty; each entry decodes as `pb.Op`; identical entries count once;
//! - the last entry is the terminal op: no `op`, exactly one input, the result;
//! - every other op has an `op` whose fields pass the per-kind checks (see `validate`);
//! - every input names an op of the definition (not the terminal) and an existing output;
//! - the ops form no cycle (impossible with honest digests, so only forged input refuses here);
//! - metadata for digests that are not in the definition is ignored.
//!
//! Every op is checked, but the graph keeps only the vertices the result depends on.

mod decode;
mod error;
mod graph;
mod name;
mod validate;

use nodekit_proto::pb;

pub use error::LlbError;
pub use graph::{Graph, OutputRef, Vertex};
pub use name::CUSTOM_NAME_KEY;
pub use validate::exec_output_mounts;

use decode::Decoded;
use error::OpAt;
use graph::Checked;

/// Decodes and validates a definition; an empty one (no ops) is an error.
pub fn load(def: &pb::Definition) -> Result<Graph, LlbError> {
    let decoded = decode::decode(def)?;
    let terminal = &decoded.entries[decoded.terminal];
    let result = decode::terminal_input(terminal)?;
    let output_counts = output_counts(&decoded)?;
    let links = Links {
        decoded: &decoded,
        output_counts: &output_counts,
    };
    let root = links.resolve(terminal.at(), "input 0", result)?;
    let inputs = links.all_inputs()?;
    let checked = Checked {
        decoded,
        output_counts,
        inputs,
        root,
    };
    graph::build(checked, &def.metadata)
}

/// Like [`load`], except that a definition with no ops is an empty graph (no root): that is how
/// BuildKit's `Solve` treats a request whose definition has no ops (an empty result).
pub fn load_or_empty(def: &pb::Definition) -> Result<Graph, LlbError> {
    if def.def.is_empty() {
        return Ok(Graph::empty());
    }
    load(def)
}

/// Validates each op's fields and returns its number of outputs (0 for the terminal op).
fn output_counts(decoded: &Decoded) -> Result<Vec<usize>, LlbError> {
    let terminal = decoded.terminal;
    let count = |(i, entry): (usize, &decode::Entry)| {
        if i == terminal {
            Ok(0)
        } else {
            validate::output_count(entry.at(), &entry.op)
        }
    };
    decoded.entries.iter().enumerate().map(count).collect()
}

/// Resolves input edges against the definition.
struct Links<'a> {
    decoded: &'a Decoded,
    output_counts: &'a [usize],
}

impl Links<'_> {
    /// The resolved inputs of every entry (none for the terminal op).
    fn all_inputs(&self) -> Result<Vec<Vec<(usize, OutputRef)>>, LlbError> {
        let mut all = Vec::with_capacity(self.decoded.entries.len());
        for (i, entry) in self.decoded.entries.iter().enumerate() {
            if i == self.decoded.terminal {
                all.push(Vec::new());
                continue;
            }
            let resolve = |(k, input)| self.resolve(entry.at(), &format!("input {k}"), input);
            all.push(
                entry
                    .op
                    .inputs
                    .iter()
                    .enumerate()
                    .map(resolve)
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(all)
    }

    /// Checks that `input` names an op of the definition and one of its outputs.
    fn resolve(
        &self,
        at: OpAt,
        field: &str,
        input: &pb::Input,
    ) -> Result<(usize, OutputRef), LlbError> {
        let target = self.target(at, field, &input.digest)?;
        let count = self.output_counts[target];
        let index = usize::try_from(input.index)
            .ok()
            .filter(|&i| i < count)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| self.bad_index(at, field, input, target))?;
        Ok((
            target,
            OutputRef {
                digest: input.digest.clone(),
                index,
            },
        ))
    }

    fn target(&self, at: OpAt, field: &str, digest: &str) -> Result<usize, LlbError> {
        let short = crate::digest::short(digest);
        match self.decoded.by_digest.get(digest) {
            None => Err(at.error(
                field,
                format!("refers to {short} which is not in the definition"),
            )),
            Some(&t) if t == self.decoded.terminal => Err(at.error(
                field,
                format!("refers to {short} which is the terminal op, not a vertex"),
            )),
            Some(&t) => Ok(t),
        }
    }

    fn bad_index(&self, at: OpAt, field: &str, input: &pb::Input, target: usize) -> LlbError {
        let entry = &self.decoded.entries[target];
        let count = self.output_counts[target];
        let plural = if count == 1 { "" } else { "s" };
        at.error(
            field,
            format!(
                "asks for output {} of op {} ({}), which has {count} output{plural}",
                input.index,
                entry.position,
                crate::digest::short(&entry.digest)
            ),
        )
    }
}
