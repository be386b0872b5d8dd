//! Which builds may share a vertex. Two builds asking for the same op digest get the same result,
//! unless the vertex reads from a client's session (local directories, secrets, SSH): then only
//! builds of that session share it.

use nodekit_llb::Graph;
use nodekit_proto::pb::op::Op as OpKind;
use nodekit_proto::pb::MountType;

/// The key under which `digest` is shared between builds of `graph`'s session.
pub fn share_key(graph: &Graph, digest: &str, session_id: &str) -> String {
    if session_bound(graph, digest) {
        format!("{session_id}/{digest}")
    } else {
        digest.to_string()
    }
}

/// Whether the vertex, or any vertex it depends on, reads from the client's session.
fn session_bound(graph: &Graph, digest: &str) -> bool {
    let mut pending = vec![digest.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(next) = pending.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        let Some(vertex) = graph.vertex(&next) else {
            continue;
        };
        if reads_session(&vertex.op.op) {
            return true;
        }
        pending.extend(vertex.inputs.iter().map(|i| i.digest.clone()));
    }
    false
}

fn reads_session(op: &Option<OpKind>) -> bool {
    match op {
        Some(OpKind::Source(source)) => source.identifier.starts_with("local://"),
        Some(OpKind::Exec(exec)) => {
            !exec.secretenv.is_empty()
                || exec.mounts.iter().any(|m| {
                    matches!(
                        MountType::try_from(m.mount_type),
                        Ok(MountType::Secret) | Ok(MountType::Ssh)
                    )
                })
        }
        _ => false,
    }
}

/// A future several waiters share, each getting a clone of its output.
pub type SharedFuture<T> = futures::future::Shared<futures::future::BoxFuture<'static, T>>;

/// Futures being solved, by key, held weakly: a build joins one in flight instead of starting
/// its own, and a future no build waits for any more is dropped.
pub struct InFlight<K, T: Clone> {
    futures: parking_lot::Mutex<
        std::collections::HashMap<
            K,
            futures::future::WeakShared<futures::future::BoxFuture<'static, T>>,
        >,
    >,
}

impl<K: std::hash::Hash + Eq, T: Clone> Default for InFlight<K, T> {
    fn default() -> Self {
        InFlight {
            futures: Default::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq, T: Clone> InFlight<K, T> {
    /// The future in flight under `key`, if any build still waits for it.
    pub fn join(&self, key: &K) -> Option<SharedFuture<T>> {
        self.futures.lock().get(key)?.upgrade()
    }

    /// Makes `future` the one in flight under `key` (forgetting the finished ones).
    pub fn register(&self, key: K, future: &SharedFuture<T>) {
        if let Some(weak) = future.downgrade() {
            let mut futures = self.futures.lock();
            futures.retain(|_, w| w.upgrade().is_some());
            futures.insert(key, weak);
        }
    }
}
