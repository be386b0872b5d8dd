//! Running builds by their client-chosen reference (`SolveRequest.Ref`), so `Status` calls (and
//! gateway calls) find the build they belong to.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use crate::waitmap::WaitMap;

pub struct Job {
    pub id: String,
    pub progress: Progress,
    pub cancel: CancellationToken,
}

#[derive(Default)]
pub struct Jobs {
    jobs: WaitMap<Arc<Job>>,
    running: std::sync::atomic::AtomicUsize,
    /// The cache records finished builds used.
    pub recent: super::recent::RecentBuilds,
}

impl Jobs {
    /// Registers a job; it is removed again when the returned guard drops.
    pub fn start(self: &Arc<Self>, id: &str) -> JobGuard {
        let job = Arc::new(Job {
            id: id.to_string(),
            progress: Progress::default(),
            cancel: CancellationToken::new(),
        });
        self.jobs.insert(id, job.clone());
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        JobGuard {
            jobs: self.clone(),
            job,
        }
    }

    /// How many builds are running now.
    pub fn running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Cancels every running build (their steps are killed and torn down); returns how many.
    pub fn cancel_all(&self) -> usize {
        let jobs = self.jobs.values();
        for job in &jobs {
            job.cancel.cancel();
        }
        jobs.len()
    }

    /// The job `id`, waiting up to `wait` for it to start.
    pub async fn get(&self, id: &str, wait: Duration) -> Option<Arc<Job>> {
        self.jobs.get(id, wait).await
    }
}

/// Holds a job in the registry for the duration of its solve.
pub struct JobGuard {
    jobs: Arc<Jobs>,
    pub job: Arc<Job>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.job.progress.close();
        self.jobs.jobs.remove(&self.job.id);
        let was = self
            .jobs
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if was == 1 {
            // The build's buffers are free now: an idle daemon stays small (and what is freed
            // after, the response, the history record, is given back once things are quiet).
            crate::memory::release_free_memory();
            crate::memory::work_ended();
        }
    }
}
