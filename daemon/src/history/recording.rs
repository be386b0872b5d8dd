//! A running build's history record, from its start to its end: a build whose `Control.Solve`
//! future is dropped (its client went away mid-build) never reaches its end, so its record is
//! completed as cancelled when the recording drops, instead of staying "running" until the
//! daemon restarts.

use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::{SolveRequest, StatusResponse};

use super::record::Ending;
use super::BuildHistory;
use crate::solver::Job;
use crate::worker::Worker;

/// What upstream's record of a build its client cancelled says (Go's `context.Canceled`).
const CANCELLED_MESSAGE: &str = "context canceled";

/// A started record; [`Recording::completed`] ends it, dropping it ends it as cancelled.
pub struct Recording {
    /// None once completed (disarmed).
    history: Option<Arc<BuildHistory>>,
    reference: String,
    /// The build's progress, whose updates so far a cancelled record keeps.
    job: Arc<Job>,
    /// Where the cancelled record is written: the worker's tracked background work, which a
    /// shutdown waits for.
    worker: Worker,
}

impl Recording {
    /// Records `request`'s build as started.
    pub fn start(
        history: Arc<BuildHistory>,
        request: &SolveRequest,
        job: Arc<Job>,
        worker: Worker,
    ) -> Recording {
        history.started(request);
        Recording {
            history: Some(history),
            reference: request.r#ref.clone(),
            job,
            worker,
        }
    }

    /// The build ended: its record is stored with `updates`.
    pub async fn completed(mut self, ending: Ending<'_>, updates: &[StatusResponse]) {
        if let Some(history) = self.history.take() {
            history.completed(&self.reference, ending, updates).await;
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let Some(history) = self.history.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(build = %self.reference, "no runtime left to record a cancelled build");
            return;
        }
        let reference = std::mem::take(&mut self.reference);
        let updates = self.job.progress.updates();
        // In the background: this runs inside the dropped request, which cannot await.
        drop(self.worker.spawn_tracked(async move {
            let status = tonic::Status::cancelled(CANCELLED_MESSAGE);
            history
                .completed(&reference, Ending::Failed(&status), &updates)
                .await;
        }));
    }
}
