use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::{BoxFuture, FutureExt, Shared};
use nodekit_llb::{Graph, OutputRef, Vertex};
use nodekit_proto::moby::buildkit::v1::Vertex as WireVertex;
use nodekit_proto::pb::op::Op as OpKind;

use super::error::SolveError;
use super::job::Job;
use super::local_sources::LocalSources;
use super::ops;
use super::progress::timestamp;
use super::result::Ref;
use crate::session::SessionManager;
use crate::worker::{Lease, Worker};

type VertexFuture = Shared<BoxFuture<'static, Result<Arc<Vec<Ref>>, Arc<SolveError>>>>;

/// What the solver works with, shared by every build.
#[derive(Clone)]
pub struct Solver {
    pub worker: Worker,
    pub sessions: Arc<SessionManager>,
    pub local_sources: Arc<LocalSources>,
}

/// One build's solve: its job (progress, cancellation), lease and client session.
pub struct SolveContext {
    pub job: Arc<Job>,
    pub lease: Lease,
    /// The session of the client that asked (for local sources, secrets).
    pub session_id: String,
    memo: Mutex<HashMap<String, VertexFuture>>,
}

impl SolveContext {
    pub fn new(job: Arc<Job>, lease: Lease, session_id: String) -> SolveContext {
        SolveContext {
            job,
            lease,
            session_id,
            memo: Mutex::new(HashMap::new()),
        }
    }
}

impl SolveContext {
    /// Drops the memoised vertex futures (they hold this context: a cycle otherwise).
    pub fn clear(&self) {
        if let Ok(mut memo) = self.memo.lock() {
            memo.clear();
        }
    }
}

impl Solver {
    /// A solver over `worker`; its own state (local source copies) lives under `root`.
    pub fn new(worker: Worker, sessions: Arc<SessionManager>, root: &std::path::Path) -> Solver {
        Solver {
            worker,
            sessions,
            local_sources: Arc::new(LocalSources::new(root)),
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
            .map_err(unwrap_shared)?;
        outputs.get(output.index as usize).cloned().ok_or_else(|| {
            SolveError::InvalidDefinition(format!(
                "{} has no output {}",
                output.digest, output.index
            ))
        })
    }

    fn vertex_future(
        &self,
        graph: &Arc<Graph>,
        ctx: &Arc<SolveContext>,
        digest: &str,
    ) -> VertexFuture {
        let Ok(mut memo) = ctx.memo.lock() else {
            return futures::future::ready(Err(Arc::new(SolveError::Other(
                "solver state poisoned".into(),
            ))))
            .boxed()
            .shared();
        };
        if let Some(existing) = memo.get(digest) {
            return existing.clone();
        }
        let (solver, graph, ctx2, digest2) =
            (self.clone(), graph.clone(), ctx.clone(), digest.to_string());
        let future = async move {
            solver
                .run_vertex(&graph, &ctx2, &digest2)
                .await
                .map(Arc::new)
                .map_err(Arc::new)
        }
        .boxed()
        .shared();
        memo.insert(digest.to_string(), future.clone());
        future
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
        let mut record = wire_vertex(vertex);
        record.started = Some(timestamp(SystemTime::now()));
        ctx.job.progress.vertex(record.clone());
        let result = self.run_op(vertex, inputs, ctx).await;
        record.completed = Some(timestamp(SystemTime::now()));
        if let Err(error) = &result {
            record.error = error.to_string();
        }
        ctx.job.progress.vertex(record);
        result
    }

    async fn run_op(
        &self,
        vertex: &Vertex,
        inputs: Vec<Ref>,
        ctx: &Arc<SolveContext>,
    ) -> Result<Vec<Ref>, SolveError> {
        match &vertex.op.op {
            Some(OpKind::Source(source)) => ops::source::run(self, ctx, vertex, source)
                .await
                .map(|r| vec![r]),
            Some(OpKind::Exec(exec)) => ops::exec::run(self, ctx, vertex, exec, inputs).await,
            Some(OpKind::File(file)) => ops::file::run(self, ctx, file, inputs).await,
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

/// A shared future's error is shared too; callers get a readable copy.
fn unwrap_shared(error: Arc<SolveError>) -> SolveError {
    match Arc::try_unwrap(error) {
        Ok(error) => error,
        Err(shared) => match shared.as_ref() {
            SolveError::Cancelled => SolveError::Cancelled,
            other => SolveError::Other(other.to_string()),
        },
    }
}
