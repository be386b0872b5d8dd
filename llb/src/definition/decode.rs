//! Turning `def` bytes into ops: decoding, digesting, de-duplicating, finding the terminal op.

use std::collections::HashMap;

use nodekit_proto::pb;
use prost::Message;

use super::error::{LlbError, OpAt};
use super::name::kind_name;
use crate::digest::digest_of;

/// One distinct op of the definition.
pub(crate) struct Entry {
    /// Position of its first occurrence in `def`.
    pub position: usize,
    pub digest: String,
    pub op: pb::Op,
}

impl Entry {
    pub fn at(&self) -> OpAt<'_> {
        OpAt {
            index: self.position,
            digest: &self.digest,
        }
    }
}

/// The distinct ops of a definition, in first-occurrence order, and which one is the terminal.
pub(crate) struct Decoded {
    pub entries: Vec<Entry>,
    pub by_digest: HashMap<String, usize>,
    /// Index into `entries` of the terminal op (the one `def` ends with).
    pub terminal: usize,
}

/// Decodes every entry of `def`; identical entries (same bytes, same digest) collapse into one,
/// as BuildKit tolerates them.
pub(crate) fn decode(def: &pb::Definition) -> Result<Decoded, LlbError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_digest = HashMap::new();
    let mut terminal = None;
    for (position, bytes) in def.def.iter().enumerate() {
        let digest = digest_of(bytes);
        if let Some(&known) = by_digest.get(&digest) {
            terminal = Some(known);
            continue;
        }
        let op = pb::Op::decode(bytes.as_slice()).map_err(|err| LlbError::Decode {
            index: position,
            digest: digest.clone(),
            reason: err.to_string(),
        })?;
        by_digest.insert(digest.clone(), entries.len());
        terminal = Some(entries.len());
        entries.push(Entry {
            position,
            digest,
            op,
        });
    }
    let terminal = terminal.ok_or(LlbError::Empty)?;
    Ok(Decoded {
        entries,
        by_digest,
        terminal,
    })
}

/// Checks the terminal op (no `op`, exactly one input) and returns its input: the result.
pub(crate) fn terminal_input(entry: &Entry) -> Result<&pb::Input, LlbError> {
    let at = entry.at();
    if let Some(kind) = &entry.op.op {
        return Err(at.error(
            "op",
            format!(
                "is set ({}) but the last entry of a definition must be the terminal op, \
                 which has no op and one input naming the result",
                kind_name(kind)
            ),
        ));
    }
    match entry.op.inputs.as_slice() {
        [input] => Ok(input),
        [] => Err(at.error(
            "inputs",
            "are empty: the terminal (last) op must name the result in its single input \
             (for an empty result BuildKit clients send a definition with no ops at all)",
        )),
        more => Err(at.error(
            "inputs",
            format!(
                "has {} entries but the terminal (last) op must have exactly one: the result",
                more.len()
            ),
        )),
    }
}
