//! The build cache as the solver sees it: before an op runs, the solver asks for results
//! recorded under the op's cache key; after it ran, it records them. [`keys`] computes keys
//! (`cachestore`'s canonical encoding of LLB ops), [`index::CacheIndex`] is the node's cache
//! (the redb index plus containerd snapshots and leases), [`NoCache`] remembers nothing.

mod bundle;
pub mod index;
pub mod keys;
mod maintenance;
pub mod remote;
mod selection;
mod stored;

pub use bundle::{ExportSummary, ImportFailure, ImportSummary, Selection};
pub use cachestore::metrics::OpKind;
pub use cachestore::CacheKey;
use futures::future::BoxFuture;
pub use maintenance::disk_stats;
use nodekit_llb::Vertex;
use nodekit_proto::pb::op::Op as LlbOp;

use super::result::Ref;

/// One op's results to record.
pub struct CacheEntry<'a> {
    pub key: CacheKey,
    pub inputs: &'a [Ref],
    pub outputs: &'a [Ref],
    /// What `du` shows for the records (the step's name).
    pub description: String,
    pub platform: String,
}

/// A store of op results by cache key.
pub trait ResultCache: Send + Sync {
    /// The recorded outputs (`outputs` of them) for `key`, if containerd still has them.
    fn lookup<'a>(
        &'a self,
        key: &'a CacheKey,
        outputs: usize,
        kind: OpKind,
    ) -> BoxFuture<'a, Option<Vec<Ref>>>;
    /// Records an op's outputs under its key.
    fn record<'a>(&'a self, entry: CacheEntry<'a>) -> BoxFuture<'a, ()>;
}

/// No cache: every lookup misses, nothing is kept.
pub struct NoCache;

impl ResultCache for NoCache {
    fn lookup<'a>(
        &'a self,
        _: &'a CacheKey,
        _: usize,
        _: OpKind,
    ) -> BoxFuture<'a, Option<Vec<Ref>>> {
        Box::pin(async { None })
    }

    fn record<'a>(&'a self, _: CacheEntry<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The cache key of a vertex that is not a source, over its inputs' keys; None when it must
/// run anyway: an input without a key, or an op kind that is not cached.
pub fn vertex_key(vertex: &Vertex, inputs: &[Ref]) -> Option<CacheKey> {
    let mut input_keys = inputs.iter().map(|i| i.key).collect::<Option<Vec<_>>>()?;
    if let Some(LlbOp::File(file)) = &vertex.op.op {
        selection::narrow_file_inputs(file, inputs, &mut input_keys);
    }
    keys::op_key(&vertex.op, &input_keys)
}

/// Whether the vertex asks to run even when its result is cached (`--no-cache`).
pub fn ignores_cache(vertex: &Vertex) -> bool {
    vertex.metadata.as_ref().is_some_and(|m| m.ignore_cache)
}

/// The counter an op kind is counted under.
pub fn op_kind(vertex: &Vertex) -> OpKind {
    match &vertex.op.op {
        Some(LlbOp::Exec(_)) => OpKind::Exec,
        Some(LlbOp::File(_)) => OpKind::File,
        Some(LlbOp::Merge(_)) => OpKind::Merge,
        Some(LlbOp::Diff(_)) => OpKind::Diff,
        Some(LlbOp::Build(_)) => OpKind::Build,
        _ => OpKind::Source,
    }
}
