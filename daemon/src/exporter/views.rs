//! The result of each platform mounted read-only for an exporter that sends files (`tar`,
//! `local`), with the directory name buildkitd's `platform-split` gives it.

use crate::solver::{SolveError, Solver};
use crate::worker::{Lease, ViewMount};

use super::image::PlatformResult;

/// One platform's result, mounted.
pub struct ResultView {
    /// `linux_amd64` for `linux/amd64`: the directory it goes under when platforms are split.
    pub dir_name: String,
    /// The platform as the build names it, for messages.
    pub platform: String,
    pub mount: ViewMount,
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
        let platform = part.platform.to_string();
        views.push(ResultView {
            dir_name: platform.replace('/', "_"),
            platform,
            mount,
        });
    }
    Ok(views)
}
