//! The result of each platform mounted read-only for an exporter that sends files (`tar`,
//! `local`), with the directory name buildkitd's `platform-split` gives it.

use crate::solver::{SolveError, Solver};
use crate::worker::{Lease, ViewMount};

use super::image::PlatformResult;

/// One platform's result, mounted.
pub struct ResultView {
    /// The platform as the build names it (`linux/amd64`).
    pub platform: String,
    pub mount: ViewMount,
}

impl ResultView {
    /// `linux_amd64` for `linux/amd64`: the directory it goes under when platforms are split.
    pub fn dir_name(&self) -> String {
        self.platform.replace('/', "_")
    }
}

/// Mounts every part; each is unmounted when its view is dropped.
pub async fn mount_results(
    solver: &Solver,
    lease: &Lease,
    parts: &[PlatformResult],
) -> Result<Vec<ResultView>, SolveError> {
    let mut views = Vec::with_capacity(parts.len());
    for part in parts {
        let mount = solver
            .worker
            .mount_view(lease, part.result.chain_id().as_deref())
            .await
            .map_err(|e| SolveError::worker("mounting the result to send it", e))?;
        views.push(ResultView {
            platform: part.platform.to_string(),
            mount,
        });
    }
    Ok(views)
}
