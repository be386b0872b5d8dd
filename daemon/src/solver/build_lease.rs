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
    /// Starts creating the lease now. If nobody ever asks for it, it is released once made.
    pub fn start(worker: &Worker) -> BuildLease {
        let worker = worker.clone();
        let creation = tokio::spawn(async move { worker.lease("build").await });
        let created = async move {
            match creation.await {
                Ok(Ok(lease)) => Ok(Arc::new(lease)),
                Ok(Err(error)) => Err(Arc::new(SolveError::worker("creating a lease", error))),
                Err(error) => Err(Arc::new(SolveError::Other(format!(
                    "creating a lease: {error}"
                )))),
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
