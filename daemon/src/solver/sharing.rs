//! Which builds may share a vertex. Two builds asking for the same op digest get the same result,
//! unless the vertex reads from a client's session (local directories, secrets, SSH): then only
//! builds of that session share it.

use std::collections::HashMap;

use nodekit_llb::Graph;
use nodekit_proto::pb::op::Op as OpKind;
use nodekit_proto::pb::MountType;

/// The key under which `digest` is shared between builds of `graph`'s session. `known`: which
/// digests read from a session, as found so far (a digest names its inputs' digests too, so the
/// answer holds in any graph); asking each vertex afresh made a chain of N ops cost N squared.
pub fn share_key(
    graph: &Graph,
    digest: &str,
    session_id: &str,
    known: &mut HashMap<String, bool>,
) -> String {
    if session_bound(graph, digest, known) {
        format!("{session_id}/{digest}")
    } else {
        digest.to_string()
    }
}

/// Whether the vertex, or any vertex it depends on, reads from the client's session: found
/// after its inputs (depth first, on a stack of its own: a chain can be deeper than the
/// thread's), each digest once.
fn session_bound(graph: &Graph, digest: &str, known: &mut HashMap<String, bool>) -> bool {
    let mut pending = vec![(digest.to_string(), false)];
    while let Some((next, inputs_known)) = pending.pop() {
        if known.contains_key(&next) {
            continue;
        }
        let Some(vertex) = graph.vertex(&next) else {
            known.insert(next, false);
            continue;
        };
        if inputs_known {
            let bound = reads_session(&vertex.op.op)
                || vertex
                    .inputs
                    .iter()
                    .any(|i| known.get(&i.digest) == Some(&true));
            known.insert(next, bound);
        } else {
            pending.push((next, true));
            let unknown = vertex
                .inputs
                .iter()
                .filter(|i| !known.contains_key(&i.digest));
            pending.extend(unknown.map(|i| (i.digest.clone(), false)));
        }
    }
    known.get(digest) == Some(&true)
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
    futures: parking_lot::Mutex<Registered<K, T>>,
}

type WeakFuture<T> = futures::future::WeakShared<futures::future::BoxFuture<'static, T>>;

struct Registered<K, T: Clone> {
    futures: HashMap<K, WeakFuture<T>>,
    /// The size at which the finished ones are forgotten next: twice the live ones at the last
    /// time, so a registration costs a constant on average (forgetting at each made a build
    /// of N vertices cost N squared).
    prune_at: usize,
}

/// The smallest `prune_at`.
const PRUNE_AT_LEAST: usize = 64;

impl<K: std::hash::Hash + Eq, T: Clone> Default for InFlight<K, T> {
    fn default() -> Self {
        InFlight {
            futures: parking_lot::Mutex::new(Registered {
                futures: HashMap::new(),
                prune_at: PRUNE_AT_LEAST,
            }),
        }
    }
}

impl<K: std::hash::Hash + Eq, T: Clone> InFlight<K, T> {
    /// The future in flight under `key`, if any build still waits for it.
    pub fn join(&self, key: &K) -> Option<SharedFuture<T>> {
        self.futures.lock().futures.get(key)?.upgrade()
    }

    /// Makes `future` the one in flight under `key` (forgetting the finished ones now and then).
    pub fn register(&self, key: K, future: &SharedFuture<T>) {
        let Some(weak) = future.downgrade() else {
            return;
        };
        let mut registered = self.futures.lock();
        if registered.futures.len() >= registered.prune_at {
            registered.futures.retain(|_, w| w.upgrade().is_some());
            registered.prune_at = (registered.futures.len() * 2).max(PRUNE_AT_LEAST);
        }
        registered.futures.insert(key, weak);
    }

    /// How many futures are registered, finished ones not yet forgotten included.
    #[cfg(test)]
    fn registered(&self) -> usize {
        self.futures.lock().futures.len()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn ready(value: u32) -> SharedFuture<u32> {
        async move { value }.boxed().shared()
    }

    #[test]
    fn finished_futures_are_forgotten_and_live_ones_joined() {
        let in_flight = InFlight::default();
        let live: Vec<SharedFuture<u32>> = (0..100).map(ready).collect();
        for (key, future) in live.iter().enumerate() {
            in_flight.register(key, future);
        }
        for key in 100..10_000 {
            // Dropped at once: no build waits for it.
            in_flight.register(key, &ready(key as u32));
        }
        assert!(in_flight.registered() <= 2 * 100 + PRUNE_AT_LEAST);
        assert!((0..100).all(|key| in_flight.join(&key).is_some()));
        assert!(in_flight.join(&9_998).is_none());
    }
}
