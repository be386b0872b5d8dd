//! What an op runs with ([`OpContext`]), and the snapshot steps every op kind takes under the
//! vertex's own lease.

use std::sync::Arc;

use nodekit_llb::Vertex;

use crate::solver::error::SolveError;
use crate::solver::result::Ref;
use crate::solver::{SolveContext, Solver};
use crate::worker::{ActiveSnapshot, Compression, Lease, ViewMount};

/// What one vertex's op works with: the build's context and the vertex's own lease, which owns
/// everything the op creates (and is held by the results it makes).
pub struct OpContext<'a> {
    pub solver: &'a Solver,
    pub ctx: &'a Arc<SolveContext>,
    pub vertex: &'a Vertex,
    /// Created when the op first creates something: an op that only finds what exists (an
    /// unchanged local source) costs containerd no lease.
    lease: tokio::sync::OnceCell<Arc<Lease>>,
}

impl<'a> OpContext<'a> {
    pub fn new(solver: &'a Solver, ctx: &'a Arc<SolveContext>, vertex: &'a Vertex) -> Self {
        OpContext {
            solver,
            ctx,
            vertex,
            lease: tokio::sync::OnceCell::new(),
        }
    }

    /// The vertex's lease, if the op created one (for what outlives the op).
    pub fn into_lease(self) -> Option<Arc<Lease>> {
        self.lease.into_inner()
    }

    /// The vertex's lease, created on first use.
    /// The build's client session.
    pub async fn session(&self) -> Result<Arc<crate::session::Session>, SolveError> {
        self.solver
            .sessions
            .get(&self.ctx.session_id)
            .await
            .map_err(|e| SolveError::Session(e.to_string()))
    }

    pub async fn lease(&self) -> Result<&Arc<Lease>, SolveError> {
        self.lease
            .get_or_try_init(|| async {
                self.solver
                    .worker
                    .lease("vertex")
                    .await
                    .map(Arc::new)
                    .map_err(|e| SolveError::worker("creating a lease", e))
            })
            .await
    }
}

/// The snapshot steps every op kind takes, under the vertex's lease.
impl OpContext<'_> {
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
