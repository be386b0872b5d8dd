//! One runner per LLB op kind.

pub mod exec;
pub mod file;
pub mod http;
pub mod local;
pub mod merge;
pub mod source;

use nodekit_proto::pb;

use crate::oci::Platform;
use crate::solver::error::SolveError;
use crate::solver::result::Ref;
use crate::worker::{ActiveSnapshot, Compression, ViewMount};

/// The platform an op runs for: its own, else the node's.
pub fn op_platform(op: &pb::Op) -> Platform {
    match &op.platform {
        Some(p) if !p.os.is_empty() && !p.architecture.is_empty() => Platform::new(
            &p.os,
            &p.architecture,
            Some(p.variant.as_str()).filter(|v| !v.is_empty()),
        ),
        _ => Platform::native(),
    }
}

/// The snapshot steps every op kind takes, under the vertex's lease.
impl crate::solver::OpContext<'_> {
    /// A writable snapshot on `base`.
    pub async fn prepare(&self, base: &Ref) -> Result<ActiveSnapshot, SolveError> {
        self.solver
            .worker
            .prepare(self.lease().await?, base.chain_id().as_deref())
            .await
            .map_err(|e| SolveError::worker("preparing a snapshot", e))
    }

    /// Commits `active` (prepared on `base`) as one more layer of `base`. Intermediate layers
    /// stay uncompressed: they never leave the node unless exported.
    pub async fn commit(&self, active: ActiveSnapshot, base: &Ref) -> Result<Ref, SolveError> {
        let lease = self.lease().await?;
        let layer = self
            .solver
            .worker
            .commit_layer(lease, active, Compression::Uncompressed)
            .await
            .map_err(|e| SolveError::worker("committing a result", e))?;
        Ok(base.with_layer(layer, lease))
    }

    /// `result` mounted read-only on the host.
    pub async fn view(&self, result: &Ref) -> Result<ViewMount, SolveError> {
        self.solver
            .worker
            .mount_view(self.lease().await?, result.chain_id().as_deref())
            .await
            .map_err(|e| SolveError::worker("mounting a snapshot", e))
    }

    /// A writable snapshot mounted on the host.
    pub fn mount_active(&self, active: &ActiveSnapshot) -> Result<ViewMount, SolveError> {
        self.solver
            .worker
            .mount_active(active)
            .map_err(|e| SolveError::worker("mounting a snapshot", e))
    }
}
