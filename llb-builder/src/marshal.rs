//! Serialising the graph a state depends on into a `pb.Definition`, op by op in the order,
//! with the bytes, digests and metadata BuildKit's Go client (`State.Marshal`) produces.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use nodekit_llb::digest_of;
use nodekit_proto::pb;
use prost::Message as _;

use crate::definition::DefinitionNode;
use crate::error::BuildError;
use crate::node::{node_key, Node, NodeKind, Output, Resolve};
use crate::options::{merge_metadata, OpOptions};
use crate::platform::host_platform;
use crate::sourcemap::Collector;
use crate::state::State;

/// Settings of one marshal (BuildKit's marshal-time `ConstraintsOpt`s).
#[derive(Debug, Clone, Default)]
pub struct MarshalOptions {
    /// The platform of exec and image ops that have none (default: the host's).
    pub platform: Option<pb::Platform>,
    /// `local.unique` for local sources without a session id or their own unique id. BuildKit's
    /// client uses a random id here; none (the default) leaves the attribute out, which keeps
    /// marshalling deterministic.
    pub local_unique_id: Option<String>,
    /// The daemon's LLB capabilities (`llb.WithCaps`). With them, runs get a default `PATH`
    /// unless the daemon sets one (`exec.meta.setsdefaultpath`).
    pub caps: Option<BTreeSet<String>>,
    /// Options every op gets: metadata (ignore cache, descriptions, …) and worker constraints.
    pub op_options: OpOptions,
}

/// Marshals the graph `state` depends on with default options.
pub fn marshal(state: &State) -> Result<pb::Definition, BuildError> {
    marshal_with(state, &MarshalOptions::default())
}

/// Marshals the graph `state` depends on: every op once, inputs before the ops that use them,
/// then the terminal op naming the state's output. Scratch gives an empty definition.
pub fn marshal_with(state: &State, options: &MarshalOptions) -> Result<pb::Definition, BuildError> {
    let Some(output) = &state.output else {
        return Ok(pb::Definition::default());
    };
    let mut m = Marshaller {
        platform: options.platform.clone().unwrap_or_else(host_platform),
        options,
        digests: HashMap::new(),
        seen: HashSet::new(),
        def: Vec::new(),
        metadata: BTreeMap::new(),
        sources: Collector::default(),
    };
    m.visit(&output.node)?;
    m.terminal(output)
}

struct Marshaller<'a> {
    platform: pb::Platform,
    options: &'a MarshalOptions,
    /// Digest of every marshalled node, by node identity.
    digests: HashMap<usize, String>,
    /// Digests already in `def` (equal ops from different nodes are written once).
    seen: HashSet<String>,
    def: Vec<Vec<u8>>,
    metadata: BTreeMap<String, pb::OpMetadata>,
    sources: Collector,
}

impl Marshaller<'_> {
    /// Marshals `root` and the nodes it reads, each after its inputs (depth first, in
    /// BuildKit's input order). With a stack of its own: recursion overflowed the thread's
    /// stack on a chain of a few thousand ops (a long Dockerfile).
    fn visit(&mut self, root: &Arc<Node>) -> Result<(), BuildError> {
        // Each node with the index of the next of its inputs to visit.
        let mut stack: Vec<(Arc<Node>, usize)> = vec![(root.clone(), 0)];
        while let Some((node, next)) = stack.last_mut() {
            if self.digests.contains_key(&node_key(node)) {
                stack.pop();
                continue;
            }
            if let Some(dep) = node.deps().get(*next) {
                let dep = dep.node.clone();
                *next += 1;
                stack.push((dep, 0));
                continue;
            }
            let node = node.clone();
            stack.pop();
            self.write(&node)?;
        }
        Ok(())
    }

    /// Writes `node`'s op, its inputs being written.
    fn write(&mut self, node: &Arc<Node>) -> Result<(), BuildError> {
        if let NodeKind::Definition(embedded) = &node.kind {
            self.embed(node, embedded);
            return Ok(());
        }
        let lowered = node.lower(&*self)?;
        let mut op = lowered.op;
        let mut filters = self.options.op_options.worker_constraints.clone();
        filters.extend(node.opts.worker_constraints.iter().cloned());
        op.constraints = Some(pb::WorkerConstraints { filter: filters });
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);
        let mut meta = self.options.op_options.metadata(&[]);
        merge_metadata(&mut meta, node.opts.metadata(&lowered.caps));
        let entry = self.metadata.entry(digest.clone()).or_default();
        merge_metadata(entry, meta);
        self.sources.add(&digest, &node.opts.locations);
        self.digests.insert(node_key(node), digest.clone());
        if self.seen.insert(digest) {
            self.def.push(bytes);
        }
        Ok(())
    }

    /// Writes an embedded definition's ops as they are; the node stands for the op whose output
    /// the definition named.
    fn embed(&mut self, node: &Arc<Node>, embedded: &DefinitionNode) {
        for (digest, bytes) in &embedded.ops {
            if self.seen.insert(digest.clone()) {
                self.def.push(bytes.clone());
            }
        }
        for (digest, meta) in &embedded.metadata {
            merge_metadata(
                self.metadata.entry(digest.clone()).or_default(),
                meta.clone(),
            );
        }
        self.digests
            .insert(node_key(node), embedded.output_digest.clone());
    }

    /// Appends the terminal op and its metadata, and builds the definition.
    fn terminal(mut self, output: &Output) -> Result<pb::Definition, BuildError> {
        let op = pb::Op {
            inputs: vec![self.input(output)?],
            ..pb::Op::default()
        };
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);
        let mut caps = BTreeMap::from([
            ("constraints".to_string(), true),
            ("platform".to_string(), true),
        ]);
        for meta in self.metadata.values() {
            let flags = [
                (meta.ignore_cache, "meta.ignorecache"),
                (!meta.description.is_empty(), "meta.description"),
                (meta.export_cache.is_some(), "meta.exportcache"),
            ];
            caps.extend(
                flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, cap)| (cap.to_string(), true)),
            );
        }
        let entry = self.metadata.entry(digest).or_default();
        entry.caps.extend(caps);
        self.def.push(bytes);
        Ok(pb::Definition {
            def: self.def,
            metadata: self.metadata,
            source: Some(self.sources.finish()),
        })
    }
}

impl Resolve for Marshaller<'_> {
    fn input(&self, output: &Output) -> Result<pb::Input, BuildError> {
        let digest = self.digests.get(&node_key(&output.node)).ok_or_else(|| {
            BuildError::Internal("an op was used before it was marshalled".to_string())
        })?;
        Ok(pb::Input {
            digest: digest.clone(),
            index: output.index,
        })
    }

    fn default_platform(&self) -> &pb::Platform {
        &self.platform
    }

    fn local_unique_id(&self) -> Option<&str> {
        self.options.local_unique_id.as_deref()
    }

    fn caps(&self) -> Option<&BTreeSet<String>> {
        self.options.caps.as_ref()
    }
}
