use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::FutureExt;
use nodekit_llb::{Graph, OutputRef, Vertex};
use nodekit_proto::moby::buildkit::v1::Vertex as WireVertex;
use nodekit_proto::pb::op::Op as OpKind;
use parking_lot::Mutex;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
use tracing::Instrument;

use super::build_lease::BuildLease;
use super::cache::index::CacheIndex;
use super::cache::remote::{BuildCache, ImportContext};
use super::cache::{self, CacheEntry, CacheKey, NoCache, ResultCache};
use super::entitlements::{check_graph, Entitlements};
use super::error::SolveError;
use super::job::Job;
use super::local_sources::LocalSources;
use super::ops;
use super::progress::timestamp;
use super::result::Ref;
use super::sharing::{share_key, InFlight, SharedFuture};
use crate::metrics::StepOutcome;
use crate::session::SessionManager;
use crate::worker::{Lease, Worker};

type VertexResult = Result<Arc<Vec<Ref>>, Arc<SolveError>>;
/// A vertex being solved, or (in `flights`) a cache key being looked up or computed.
type VertexFuture = SharedFuture<VertexResult>;

/// What the solver works with, shared by every build.
#[derive(Clone)]
pub struct Solver {
    pub worker: Worker,
    pub sessions: Arc<SessionManager>,
    pub local_sources: Arc<LocalSources>,
    pub cache_mounts: Arc<crate::worker::cache_mounts::CacheMounts>,
    /// Results of earlier builds by cache key.
    pub cache: Arc<dyn ResultCache>,
    /// The node's cache index, when the solver uses one (du, prune, GC).
    pub index: Option<Arc<CacheIndex>>,
    /// Vertices being solved, by share key, so concurrent builds run each only once. Weak: a
    /// vertex no build waits for any more is dropped (and its step cancelled).
    in_flight: Arc<InFlight<String, VertexResult>>,
    /// Cache keys being looked up or computed, so that builds needing the same key at the same
    /// time (from different sessions, say) run it once.
    flights: Arc<InFlight<CacheKey, VertexResult>>,
    /// Every vertex's task: a cancelled build's are aborted, and dropped (their steps torn
    /// down) a moment later on the runtime, which a stopping daemon waits for.
    vertex_tasks: TaskTracker,
    /// Where steps are counted (the daemon's metrics).
    pub metrics: crate::metrics::Metrics,
    /// What a download or an archive extraction may write (`[limits]`).
    pub limits: crate::config::limits::ContentLimits,
}

/// One build's solve: its job (progress, cancellation), lease and client session.
pub struct SolveContext {
    pub job: Arc<Job>,
    /// The build's own lease (gateway reads, export).
    lease: BuildLease,
    /// The session of the client that asked (for local sources, secrets).
    pub session_id: String,
    /// What the build's steps may do beyond the sandbox.
    pub entitlements: Entitlements,
    /// The results it used and the caches it imports (`--export-cache`, `--import-cache`).
    pub remote_cache: BuildCache,
    memo: Mutex<HashMap<String, VertexFuture>>,
    /// Which vertices read from the session (see `share_key`), by digest.
    session_bound: Mutex<HashMap<String, bool>>,
}

impl SolveContext {
    /// A build's context; its lease is being created from now on.
    pub fn new(
        job: Arc<Job>,
        worker: &Worker,
        session_id: String,
        entitlements: Entitlements,
    ) -> SolveContext {
        SolveContext {
            job,
            lease: BuildLease::start(worker),
            session_id,
            entitlements,
            remote_cache: BuildCache::default(),
            memo: Mutex::new(HashMap::new()),
            session_bound: Mutex::new(HashMap::new()),
        }
    }

    /// The build's own lease (gateway reads, export).
    pub async fn lease(&self) -> Result<Arc<Lease>, SolveError> {
        self.lease.get().await
    }

    /// Drops the memoised vertex futures (they hold this context: a cycle otherwise).
    pub fn clear(&self) {
        self.memo.lock().clear();
    }
}

impl Solver {
    /// A solver over `worker`; its own state (local source copies) lives under `root`.
    pub fn new(worker: Worker, sessions: Arc<SessionManager>, root: &std::path::Path) -> Solver {
        Solver {
            cache_mounts: Arc::new(crate::worker::cache_mounts::CacheMounts::new(
                worker.clone(),
            )),
            worker,
            sessions,
            local_sources: Arc::new(LocalSources::new(root)),
            cache: Arc::new(NoCache),
            index: None,
            in_flight: Arc::default(),
            flights: Arc::default(),
            vertex_tasks: TaskTracker::new(),
            metrics: Default::default(),
            limits: Default::default(),
        }
    }

    /// Lets go of the kept copies of local sources (the next sync of each starts afresh).
    pub async fn release_kept_sources(&self) {
        for mut kept in self.local_sources.drain() {
            // Unmounted before its snapshots may go.
            kept.view = None;
            for owner in kept.owners {
                if let Ok(lease) = Arc::try_unwrap(owner) {
                    if let Err(error) = lease.release().await {
                        tracing::warn!(%error, "could not release a kept local source's lease");
                    }
                }
            }
        }
    }

    /// Keeps results in `index` from now on.
    pub fn use_index(&mut self, index: Arc<CacheIndex>) {
        self.cache = index.clone();
        self.index = Some(index);
    }

    /// Releases what the solver keeps between builds (kept local source snapshots) and waits
    /// for lease deletions in flight, so no lease outlives the daemon.
    pub async fn shutdown(&self) {
        self.release_kept_sources().await;
        if let Some(index) = &self.index {
            if let Err(error) = index.store().flush() {
                tracing::warn!(%error, "could not write the cache's hit counts");
            }
        }
        // The builds were cancelled by now (or ended): their vertices' tasks end first (an
        // aborted one starts its step's teardown as it is dropped), the steps' teardowns next,
        // the leases they held after them.
        self.vertex_tasks.close();
        let limit = std::time::Duration::from_secs(10);
        if tokio::time::timeout(limit, self.vertex_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some build steps did not stop in time");
        }
        self.worker
            .finish_steps(std::time::Duration::from_secs(10))
            .await;
        self.worker.settle(std::time::Duration::from_secs(10)).await;
        // Whatever still holds a lease now (a result a finishing request had not yet dropped)
        // would release it on a runtime that is going away: release them all here, as a start
        // after a crash would. Cache leases carry another label and stay.
        let worker = &self.worker;
        let owner = &worker.config().owner;
        match crate::worker::leases::release_leftovers(
            worker.channel().clone(),
            worker.ctx(),
            owner,
        )
        .await
        {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "released leases still held at shutdown"),
            Err(error) => tracing::warn!(%error, "could not release the leases still held"),
        }
    }

    /// Solves the graph's result (None for an empty definition).
    pub async fn solve(
        &self,
        graph: Arc<Graph>,
        ctx: Arc<SolveContext>,
    ) -> Result<Option<Ref>, SolveError> {
        let Some(root) = graph.root().cloned() else {
            return Ok(None);
        };
        check_graph(&graph, &ctx.entitlements)?;
        let cancel = ctx.job.cancel.clone();
        tokio::select! {
            solved = self.output(&graph, &ctx, &root) => solved.map(Some),
            _ = cancel.cancelled() => Err(SolveError::Cancelled),
        }
    }

    /// One output of one vertex, solving the vertex (once) if needed.
    async fn output(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        output: &OutputRef,
    ) -> Result<Ref, SolveError> {
        let outputs = self
            .vertex_future(graph, ctx, &output.digest)
            .await
            .map_err(SolveError::from_shared)?;
        outputs.get(output.index as usize).cloned().ok_or_else(|| {
            SolveError::InvalidDefinition(format!(
                "{} has no output {}",
                output.digest, output.index
            ))
        })
    }

    /// The vertex's future: this build's, another build's still in flight, or a new one.
    fn vertex_future(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
    ) -> VertexFuture {
        if let Some(existing) = ctx.memo.lock().get(digest).cloned() {
            return existing;
        }
        let key = share_key(
            graph,
            digest,
            &ctx.session_id,
            &mut ctx.session_bound.lock(),
        );
        let future = match self.in_flight.join(&key) {
            Some(shared) => self.watch_joined(graph, ctx, digest, shared),
            None => self.start_vertex(graph, ctx, digest, &key),
        };
        ctx.memo.lock().insert(digest.to_string(), future.clone());
        future
    }

    fn start_vertex(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
        key: &str,
    ) -> VertexFuture {
        let (solver, graph, ctx, digest) =
            (self.clone(), graph.clone(), ctx.clone(), digest.to_string());
        let run = async move {
            solver
                .run_vertex(&graph, &ctx, &digest)
                .await
                .map(Arc::new)
                .map_err(Arc::new)
        };
        // The vertex runs as a task of its own, so that awaiting an input polls the input's
        // task handle rather than the input's whole chain of futures: a chain of ops as deep as
        // a few hundred overflowed a worker thread's stack. The task is aborted when no build
        // waits for the vertex any more, as the future it replaces was dropped.
        let task = AbortOnDropHandle::new(self.vertex_tasks.spawn(run.in_current_span()));
        let future = async move {
            task.await
                .unwrap_or_else(|ended| Err(Arc::new(task_error(ended))))
        }
        .boxed()
        .shared();
        self.in_flight.register(key.to_string(), &future);
        future
    }

    /// Another build runs this vertex: this build shows it as started and completed too.
    fn watch_joined(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
        shared: VertexFuture,
    ) -> VertexFuture {
        let record = graph.vertex(digest).map(wire_vertex);
        let ctx = ctx.clone();
        async move {
            let Some(mut record) = record else {
                return shared.await;
            };
            record.started = Some(timestamp(SystemTime::now()));
            ctx.job.progress.vertex(record.clone());
            let result = shared.await;
            finish_record(&ctx, record, result.as_ref().err().map(|e| e.to_string()));
            result
        }
        .boxed()
        .shared()
    }

    async fn run_vertex(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
    ) -> Result<Vec<Ref>, SolveError> {
        let vertex = graph
            .vertex(digest)
            .ok_or_else(|| SolveError::InvalidDefinition(format!("unknown vertex {digest}")))?;
        let inputs = futures::future::try_join_all(
            vertex
                .inputs
                .iter()
                .map(|input| self.output(graph, ctx, input)),
        )
        .await?;
        // Sources are keyed by what they read, once they have read it.
        let Some(key) = cache::vertex_key(vertex, &inputs) else {
            return self.run_reported(vertex, inputs, ctx).await;
        };
        let (flight, leader) = match self.flights.join(&key) {
            Some(flight) => (flight, false),
            None => (self.start_flight(graph, ctx, digest, key, inputs), true),
        };
        let started = SystemTime::now();
        let outputs = flight.await.map_err(SolveError::from_shared)?;
        ctx.remote_cache.note(&outputs);
        if !leader {
            // Another build looked it up or ran it: this build shows it as cached.
            self.count_step(vertex, StepOutcome::Cached, None);
            let mut record = wire_vertex(vertex);
            record.started = Some(timestamp(started));
            record.cached = true;
            finish_record(ctx, record, None);
        }
        Ok(outputs.as_ref().clone())
    }

    /// Looks `key` up, else runs the vertex and records its outputs, once for every build
    /// that needs `key` at the same time (single flight); the starting build reports it.
    fn start_flight(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
        key: CacheKey,
        inputs: Vec<Ref>,
    ) -> VertexFuture {
        let (solver, graph, ctx, digest) =
            (self.clone(), graph.clone(), ctx.clone(), digest.to_string());
        let future = async move {
            solver
                .lookup_or_run(&graph, &ctx, &digest, key, inputs)
                .await
                .map(Arc::new)
                .map_err(Arc::new)
        }
        .boxed()
        .shared();
        self.flights.register(key, &future);
        future
    }

    async fn lookup_or_run(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
        key: CacheKey,
        inputs: Vec<Ref>,
    ) -> Result<Vec<Ref>, SolveError> {
        let vertex = graph
            .vertex(digest)
            .ok_or_else(|| SolveError::InvalidDefinition(format!("unknown vertex {digest}")))?;
        let started = SystemTime::now();
        if !cache::ignores_cache(vertex) {
            if let Some(hit) = self.cached(ctx, vertex, key).await {
                self.count_step(vertex, StepOutcome::Cached, None);
                let mut record = wire_vertex(vertex);
                record.started = Some(timestamp(started));
                record.cached = true;
                finish_record(ctx, record, None);
                return Ok(hit);
            }
        }
        let outputs = self.run_reported(vertex, inputs.clone(), ctx).await?;
        let outputs: Vec<Ref> = outputs
            .into_iter()
            .enumerate()
            .map(|(index, output)| output.keyed(key.for_output(index as u32)))
            .collect();
        let entry = CacheEntry {
            key,
            inputs: &inputs,
            outputs: &outputs,
            description: vertex.name.clone(),
            platform: ops::op_platform(&vertex.op).to_string(),
        };
        self.cache.record(entry).await;
        Ok(outputs)
    }

    /// The vertex's outputs from the node's cache, or from a cache the build imports.
    async fn cached(
        &self,
        ctx: &Arc<SolveContext>,
        vertex: &Vertex,
        key: CacheKey,
    ) -> Option<Vec<Ref>> {
        let (kind, outputs) = (cache::op_kind(vertex), vertex.output_count as usize);
        if let Some(hit) = self.cache.lookup(&key, outputs, kind).await {
            return Some(hit);
        }
        let index = self.index.as_ref()?;
        let keys: Vec<CacheKey> = (0..outputs as u32).map(|i| key.for_output(i)).collect();
        let context = ImportContext {
            worker: &self.worker,
            sessions: &self.sessions,
            session_id: &ctx.session_id,
            job: &ctx.job,
        };
        if !ctx.remote_cache.import(index, &context, &keys).await {
            return None;
        }
        self.cache.lookup(&key, outputs, kind).await
    }

    /// Runs the vertex's op, reporting it started and completed (or failed). It runs in a `step`
    /// span (inside the build's) naming the vertex as BuildKit's progress does (`sha256:...`)
    /// and its op kind, so the daemon's log lines meanwhile carry them (in JSON logs, in the
    /// span list).
    async fn run_reported(
        &self,
        vertex: &Vertex,
        inputs: Vec<Ref>,
        ctx: &Arc<SolveContext>,
    ) -> Result<Vec<Ref>, SolveError> {
        let mut record = wire_vertex(vertex);
        record.started = Some(timestamp(SystemTime::now()));
        ctx.job.progress.vertex(record.clone());
        let op = cache::op_kind(vertex).as_str();
        let span = tracing::info_span!("step", vertex = %vertex.digest, op);
        let running = std::time::Instant::now();
        let result = self
            .run_op(vertex, inputs, ctx)
            .instrument(span.clone())
            .await
            .map_err(|e| e.in_step(&vertex.name));
        let outcome = match &result {
            Ok(_) => StepOutcome::Executed,
            Err(_) => StepOutcome::Failed,
        };
        span.in_scope(|| {
            tracing::debug!(outcome = outcome.as_str(), took = ?running.elapsed(), "step done");
        });
        self.count_step(vertex, outcome, Some(running.elapsed()));
        finish_record(ctx, record, result.as_ref().err().map(|e| e.to_string()));
        result
    }

    fn count_step(
        &self,
        vertex: &Vertex,
        outcome: StepOutcome,
        ran_for: Option<std::time::Duration>,
    ) {
        self.metrics
            .step(cache::op_kind(vertex).as_str(), outcome, ran_for);
    }

    /// Runs the op under a lease of its own.
    async fn run_op(
        &self,
        vertex: &Vertex,
        inputs: Vec<Ref>,
        ctx: &Arc<SolveContext>,
    ) -> Result<Vec<Ref>, SolveError> {
        let op = ops::OpContext::new(self, ctx, vertex);
        match &vertex.op.op {
            Some(OpKind::Source(source)) => ops::source::run(&op, source).await.map(|r| vec![r]),
            Some(OpKind::Exec(exec)) => ops::exec::run(&op, exec, inputs).await,
            Some(OpKind::File(file)) => ops::file::run(&op, file, inputs).await,
            Some(OpKind::Merge(merge)) => {
                ops::merge::merge(&op, merge, inputs).await.map(|r| vec![r])
            }
            Some(OpKind::Diff(diff)) => ops::merge::diff(&op, diff, inputs).await.map(|r| vec![r]),
            Some(_) => Err(SolveError::Unsupported(format!(
                "{}: this kind of LLB op is not supported by nodekitd yet",
                vertex.kind()
            ))),
            None => Err(SolveError::InvalidDefinition(format!(
                "vertex {} has no op",
                vertex.digest
            ))),
        }
    }
}

fn finish_record(ctx: &SolveContext, mut record: WireVertex, error: Option<String>) {
    record.completed = Some(timestamp(SystemTime::now()));
    record.error = error.unwrap_or_default();
    ctx.job.progress.vertex(record);
}

fn wire_vertex(vertex: &Vertex) -> WireVertex {
    WireVertex {
        digest: vertex.digest.clone(),
        inputs: vertex.inputs.iter().map(|i| i.digest.clone()).collect(),
        name: vertex.name.clone(),
        progress_group: vertex
            .metadata
            .as_ref()
            .and_then(|m| m.progress_group.clone()),
        ..Default::default()
    }
}

/// Why a vertex's task gave no result: cancelled with its build, or a panic (a bug), which
/// fails the build rather than the daemon.
fn task_error(ended: tokio::task::JoinError) -> SolveError {
    if ended.is_cancelled() {
        SolveError::Cancelled
    } else {
        SolveError::Other(format!("a build step's task failed: {ended}"))
    }
}
