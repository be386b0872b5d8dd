//! A state on an already marshalled definition (BuildKit's `llb.NewDefinitionOp`): a frontend
//! input, or any LLB a client sent. Its ops are written into the new definition as they are
//! (bytes, digests and metadata unchanged) and the state names the output the definition's
//! terminal op points at.

use nodekit_llb::digest_of;
use nodekit_proto::pb;
use prost::Message as _;

use crate::error::BuildError;
use crate::node::{Node, NodeKind, Output};
use crate::options::OpOptions;
use crate::state::State;

/// The ops of an embedded definition and the output its terminal op names.
#[derive(Debug)]
pub(crate) struct DefinitionNode {
    /// Every op but the terminal one, with its digest.
    pub ops: Vec<(String, Vec<u8>)>,
    pub metadata: Vec<(String, pb::OpMetadata)>,
    /// The digest of the op whose output the state is.
    pub output_digest: String,
}

/// The state `definition` describes; an empty definition is scratch.
pub fn from_definition(definition: &pb::Definition) -> Result<State, BuildError> {
    let Some((terminal, ops)) = definition.def.split_last() else {
        return Ok(State::new(None));
    };
    let terminal = pb::Op::decode(terminal.as_slice())
        .map_err(|e| BuildError::Internal(format!("the definition's terminal op: {e}")))?;
    let Some(input) = terminal.inputs.first() else {
        return Ok(State::new(None));
    };
    let ops: Vec<(String, Vec<u8>)> = ops.iter().map(|b| (digest_of(b), b.clone())).collect();
    if !ops.iter().any(|(digest, _)| *digest == input.digest) {
        return Err(BuildError::Internal(format!(
            "the definition's terminal op names {}, which it does not contain",
            input.digest
        )));
    }
    let node = DefinitionNode {
        metadata: ops
            .iter()
            .filter_map(|(d, _)| definition.metadata.get(d).map(|m| (d.clone(), m.clone())))
            .collect(),
        ops,
        output_digest: input.digest.clone(),
    };
    let node = Node {
        kind: NodeKind::Definition(node),
        opts: OpOptions::new(),
    };
    Ok(State::new(Some(Output::new(node, input.index))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{image, marshal};

    #[test]
    fn an_embedded_definition_is_written_unchanged_under_what_builds_on_it() {
        let base = image("busybox:1").run(["sh", "-c", "echo hi > /x"]).root();
        let sent = marshal(&base).unwrap();
        let embedded = from_definition(&sent).unwrap();
        // The same graph marshalled through the embedding is the same definition.
        assert_eq!(marshal(&embedded).unwrap().def, sent.def);
        // Ops built on it read the embedded output.
        let on_top = embedded.run(["cat", "/x"]).root();
        let def = marshal(&on_top).unwrap();
        assert_eq!(def.def.len(), sent.def.len() + 1);
        for op in &sent.def[..sent.def.len() - 1] {
            assert!(def.def.contains(op));
        }
        assert!(from_definition(&pb::Definition::default())
            .unwrap()
            .output
            .is_none());
    }
}
