//! The seam where the build cache (the cache store, its own issue) plugs into the solver: before
//! a vertex runs, the solver asks for a result recorded under the vertex's cache key; after it
//! ran, it records the result. Until the store exists, [`NoCache`] answers every lookup with a
//! miss, so every vertex runs.

use futures::future::BoxFuture;
use nodekit_llb::Vertex;

use super::result::Ref;

/// What identifies a vertex's result: its op (the digest of its exact bytes) and the content of
/// its inputs (their chain IDs, content-addressed by the layers' diff IDs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub op: String,
    pub inputs: Vec<Option<String>>,
}

impl CacheKey {
    /// The key of `vertex` over `inputs`; None for vertices that must always run (local
    /// sources read the client's files; `ignore_cache` asks for a fresh run).
    pub fn of(vertex: &Vertex, inputs: &[Ref]) -> Option<CacheKey> {
        let ignore = vertex.metadata.as_ref().is_some_and(|m| m.ignore_cache);
        let local = matches!(&vertex.op.op, Some(nodekit_proto::pb::op::Op::Source(s)) if s.identifier.starts_with("local://"));
        if ignore || local {
            return None;
        }
        Some(CacheKey {
            op: vertex.digest.clone(),
            inputs: inputs.iter().map(Ref::chain_id).collect(),
        })
    }
}

/// A store of vertex results by cache key.
pub trait ResultCache: Send + Sync {
    /// The recorded outputs for `key`, if their snapshots are still there.
    fn lookup<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<Vec<Ref>>>;
    /// Records `outputs` under `key`.
    fn record<'a>(&'a self, key: &'a CacheKey, outputs: &'a [Ref]) -> BoxFuture<'a, ()>;
}

/// No cache: every lookup misses, nothing is kept.
pub struct NoCache;

impl ResultCache for NoCache {
    fn lookup<'a>(&'a self, _: &'a CacheKey) -> BoxFuture<'a, Option<Vec<Ref>>> {
        Box::pin(async { None })
    }

    fn record<'a>(&'a self, _: &'a CacheKey, _: &'a [Ref]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use nodekit_proto::pb;

    use super::*;

    fn vertex(identifier: &str, ignore_cache: bool) -> Vertex {
        Vertex {
            digest: format!("sha256:{identifier}"),
            position: 0,
            op: pb::Op {
                op: Some(pb::op::Op::Source(pb::SourceOp {
                    identifier: identifier.into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            inputs: Vec::new(),
            output_count: 1,
            metadata: Some(pb::OpMetadata {
                ignore_cache,
                ..Default::default()
            }),
            platform: None,
            name: identifier.into(),
        }
    }

    #[test]
    fn local_sources_and_ignore_cache_always_run() {
        assert!(CacheKey::of(&vertex("local://context", false), &[]).is_none());
        assert!(CacheKey::of(&vertex("docker-image://busybox", true), &[]).is_none());
        let key =
            CacheKey::of(&vertex("docker-image://busybox", false), &[Ref::default()]).unwrap();
        assert_eq!(key.op, "sha256:docker-image://busybox");
        assert_eq!(key.inputs, vec![None], "a scratch input has no chain");
    }
}
