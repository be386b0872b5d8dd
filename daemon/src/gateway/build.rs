//! One gateway build: the definitions its frontend solved (by result id), the mounts through
//! which it reads their files, and the result it returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use nodekit_proto::pb;
use tokio::sync::oneshot;

use super::FrontendHost;
use crate::solver::{Ref, SolveContext, SolveError, Solver};
use crate::worker::{Lease, ViewMount};

/// The result metadata key of the image config a frontend made.
pub const IMAGE_CONFIG_KEY: &str = "containerimage.config";

/// What the frontend returned.
#[derive(Debug)]
pub enum Returned {
    Result(ReturnedResult),
    /// The frontend failed; its error (message, code and typed details) is the build's.
    Error(nodekit_proto::google::rpc::Status),
}

/// A returned result: one ref (key "") or one per platform, and the frontend's metadata
/// (`containerimage.config`, ...).
#[derive(Debug, Default)]
pub struct ReturnedResult {
    pub refs: BTreeMap<String, Option<Ref>>,
    pub metadata: BTreeMap<String, Vec<u8>>,
}

impl ReturnedResult {
    /// A result of one ref (None: empty).
    pub fn single(result: Option<Ref>) -> ReturnedResult {
        ReturnedResult {
            refs: BTreeMap::from([(String::new(), result)]),
            metadata: BTreeMap::new(),
        }
    }
}

pub struct GatewayBuild {
    pub solver: Solver,
    pub ctx: Arc<SolveContext>,
    /// Solved results by the id handed to the frontend; None is an empty result.
    results: Mutex<HashMap<String, Option<Ref>>>,
    returned: Mutex<Option<oneshot::Sender<Returned>>>,
    views: tokio::sync::Mutex<HashMap<String, Arc<ViewMount>>>,
    /// Interactive containers (NewContainer), released when the build ends.
    pub containers: super::Containers,
    /// The inputs handed to the frontend (`LLBBridge.Inputs`): a frontend image's, as its
    /// request gave them; none for a client-side frontend.
    pub inputs: BTreeMap<String, pb::Definition>,
    /// Serves LLBBridge to the frontend images this build runs.
    pub host: Arc<dyn FrontendHost>,
}

impl GatewayBuild {
    pub fn new(
        solver: Solver,
        ctx: Arc<SolveContext>,
        host: Arc<dyn FrontendHost>,
    ) -> (Arc<GatewayBuild>, oneshot::Receiver<Returned>) {
        Self::with_inputs(solver, ctx, host, BTreeMap::new())
    }

    /// The build of a frontend image run within this one: the same solver, context (session,
    /// lease, progress) and host; results, containers and return of its own.
    pub fn child(
        &self,
        inputs: BTreeMap<String, pb::Definition>,
    ) -> (Arc<GatewayBuild>, oneshot::Receiver<Returned>) {
        Self::with_inputs(
            self.solver.clone(),
            self.ctx.clone(),
            self.host.clone(),
            inputs,
        )
    }

    fn with_inputs(
        solver: Solver,
        ctx: Arc<SolveContext>,
        host: Arc<dyn FrontendHost>,
        inputs: BTreeMap<String, pb::Definition>,
    ) -> (Arc<GatewayBuild>, oneshot::Receiver<Returned>) {
        let (sender, receiver) = oneshot::channel();
        let build = GatewayBuild {
            solver,
            ctx,
            results: Mutex::new(HashMap::new()),
            returned: Mutex::new(Some(sender)),
            views: tokio::sync::Mutex::new(HashMap::new()),
            containers: super::Containers::default(),
            inputs,
            host,
        };
        (Arc::new(build), receiver)
    }

    /// Solves `definition` within this build; returns its result (None: empty).
    pub async fn solve_ref(&self, definition: &pb::Definition) -> Result<Option<Ref>, SolveError> {
        let graph = nodekit_llb::load_or_empty(definition)
            .map_err(|e| SolveError::InvalidDefinition(e.to_string()))?;
        self.solver.solve(Arc::new(graph), self.ctx.clone()).await
    }

    /// Keeps `result` under a new id the frontend's client can name.
    pub fn adopt(&self, result: Option<Ref>) -> String {
        let id = format!("nodekit-ref-{}", crate::worker::random_suffix());
        self.results.lock().insert(id.clone(), result);
        id
    }

    /// Solves `definition` within this build; returns the id of its result.
    pub async fn solve(&self, definition: &pb::Definition) -> Result<String, SolveError> {
        let result = self.solve_ref(definition).await?;
        Ok(self.adopt(result))
    }

    /// The result behind `id`; the empty id is the empty result, as upstream treats it.
    pub fn result(&self, id: &str) -> Result<Option<Ref>, SolveError> {
        if id.is_empty() {
            return Ok(None);
        }
        self.results.lock().get(id).cloned().ok_or_else(|| {
            SolveError::InvalidDefinition(format!("no result with id {id:?} in this build"))
        })
    }

    /// Hands the frontend's outcome to the waiting `Control.Solve`; only the first counts.
    pub fn finish(&self, returned: Returned) -> Result<(), SolveError> {
        let sender = self.returned.lock().take();
        let sender = sender.ok_or_else(|| {
            SolveError::InvalidDefinition("this build has already returned".into())
        })?;
        sender
            .send(returned)
            .map_err(|_| SolveError::Other("the build ended before the result was returned".into()))
    }

    /// A read-only host mount of result `id` (kept for the rest of the build).
    pub async fn view(&self, id: &str) -> Result<Arc<ViewMount>, SolveError> {
        let mut views = self.views.lock().await;
        if let Some(view) = views.get(id) {
            return Ok(view.clone());
        }
        let result = self.result(id)?;
        let view = match result
            .as_ref()
            .and_then(|r| Some((r.view.as_ref()?, r.owners.last()?)))
        {
            // A result read build after build is mounted once, under a lease it holds itself.
            Some((shared, owner)) => shared
                .get_or_try_init(|| self.mount(owner, result.as_ref()))
                .await?
                .clone(),
            None => {
                let lease = self.ctx.lease().await?;
                self.mount(&lease, result.as_ref()).await?
            }
        };
        views.insert(id.to_string(), view.clone());
        Ok(view)
    }

    async fn mount(
        &self,
        lease: &Lease,
        result: Option<&Ref>,
    ) -> Result<Arc<ViewMount>, SolveError> {
        let chain_id = result.and_then(Ref::chain_id);
        self.solver
            .worker
            .mount_view(lease, chain_id.as_deref())
            .await
            .map(Arc::new)
            .map_err(|e| SolveError::worker("mounting a result to read it", e))
    }

    /// A guard that closes this build when dropped before [`CloseGuard::close`] (its
    /// `Control.Solve` was cancelled mid-await): containers must not outlive their build.
    pub fn close_guard(self: &Arc<Self>) -> CloseGuard {
        CloseGuard(Some(self.clone()))
    }

    /// Releases every container and unmounts every view (before the build's lease goes).
    pub async fn close(&self) {
        self.containers.release_all().await;
        self.views.lock().await.clear();
        self.results.lock().clear();
    }
}

/// See [`GatewayBuild::close_guard`].
pub struct CloseGuard(Option<Arc<GatewayBuild>>);

impl CloseGuard {
    pub async fn close(mut self) {
        if let Some(build) = self.0.take() {
            build.close().await;
        }
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(build) = self.0.take() {
            // Tracked, so a shutdown waits for its containers to go.
            let worker = build.solver.worker.clone();
            drop(worker.spawn_tracked(async move { build.close().await }));
        }
    }
}
