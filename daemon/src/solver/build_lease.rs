//! The lease a build's own objects (gateway read mounts, exported blobs) are made under. Its
//! creation starts with the build and runs beside it, so a build that needs it late (an export)
//! or not at all (an unchanged rebuild) never waits for containerd to write it.

use std::sync::Arc;

use futures::future::FutureExt;

use super::error::SolveError;
use super::sharing::SharedFuture;
use crate::worker::{Lease, Worker};

type Created = Result<Arc<Lease>, Arc<SolveError>>;

pub struct BuildLease {
    created: SharedFuture<Created>,
}

impl BuildLease {
    /// Starts creating the lease now. If nobody ever asks for it (the build ended first), the
    /// creating task releases it itself; the worker tracks that task, so a daemon stopping
    /// right after such a build waits for the lease to be gone instead of leaving it behind.
    pub fn start(worker: &Worker) -> BuildLease {
        let (made, receiver) = tokio::sync::oneshot::channel();
        let creator = worker.clone();
        drop(worker.spawn_tracked(async move {
            let lease = creator.lease("build").await;
            if let Err(Ok(unwanted)) = made.send(lease) {
                if let Err(error) = unwanted.release().await {
                    tracing::warn!(%error, "could not release an unused build lease");
                }
            }
        }));
        let created = async move {
            match receiver.await {
                Ok(Ok(lease)) => Ok(Arc::new(lease)),
                Ok(Err(error)) => Err(Arc::new(SolveError::worker("creating a lease", error))),
                Err(_) => Err(Arc::new(SolveError::Other(
                    "creating a lease: the daemon is stopping".into(),
                ))),
            }
        };
        BuildLease {
            created: created.boxed().shared(),
        }
    }

    /// The lease, once created.
    pub async fn get(&self) -> Result<Arc<Lease>, SolveError> {
        self.created.clone().await.map_err(SolveError::from_shared)
    }
}
