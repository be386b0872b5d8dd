//! `Control.Solve` with an LLB definition: decode, solve, export; and `Control.Status`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nodekit_proto::moby::buildkit::v1::{SolveRequest, StatusResponse};
use tonic::Status;
use tracing::Instrument;

use super::errors::to_status;
use super::{remote_cache, ApiState};
use crate::exporter::platforms::platform_results;
use crate::exporter::Exporter;
use crate::frontend::{self, FrontendRequest};
use crate::gateway::{GatewayBuild, Returned, ReturnedResult};
use crate::history::record::Ending;
use crate::history::Recording;
use crate::solver::cache::remote::options::{CacheExport, ExportTarget, Mode};
use crate::solver::{SolveContext, SolveError, Solver};

/// How long `Status` waits for its build to start (upstream waits the same).
const STATUS_WAIT: Duration = Duration::from_secs(6);

/// An exporter's type and attributes.
type ExporterSpec = (String, BTreeMap<String, String>);

/// The exporters a build asked for, from the current field or the pre-v0.13 ones; those
/// nodekitd does not have are refused by name.
fn exporters(request: &SolveRequest) -> Result<Vec<Exporter>, Status> {
    let mut specs: Vec<ExporterSpec> = request
        .exporters
        .iter()
        .map(|e| (e.r#type.clone(), e.attrs.clone()))
        .collect();
    if specs.is_empty() && !request.exporter_deprecated.is_empty() {
        specs.push((
            request.exporter_deprecated.clone(),
            request.exporter_attrs_deprecated.clone(),
        ));
    }
    specs
        .into_iter()
        .map(|(kind, attrs)| match Exporter::of(&kind, &attrs) {
            Some(exporter) => exporter.map_err(to_status),
            None => Err(Status::unimplemented(format!(
                "exporter {kind:?} is not supported by nodekitd yet (image, registry, oci, docker, tar, local)"
            ))),
        })
        .collect()
}

/// Runs a build; its logs carry its reference (`build_ref`, in JSON logs as the span's field).
pub async fn solve(
    state: &Arc<ApiState>,
    request: SolveRequest,
) -> Result<BTreeMap<String, String>, Status> {
    let span = tracing::info_span!("build", build_ref = %request.r#ref);
    solve_in_span(state, request).instrument(span).await
}

async fn solve_in_span(
    state: &Arc<ApiState>,
    request: SolveRequest,
) -> Result<BTreeMap<String, String>, Status> {
    state.accepting_builds()?;
    super::unsupported::refuse_unsupported(&request)?;
    let worker = state.worker()?.clone();
    let solver = state.solver()?.clone();
    let exports = exporters(&request)?;
    let cache_exports = remote_cache::requested_exports(request.cache.as_ref());
    let inline = cache_exports
        .iter()
        .any(|c| c.target == ExportTarget::Inline);
    if inline && !exports.iter().any(Exporter::writes_image) {
        return Err(Status::invalid_argument(
            "cache export type=inline needs an image exporter (--output type=image): the inline cache is kept in the image's config",
        ));
    }
    let mode = BuildMode::of(&request)?;
    if let BuildMode::Frontend(name) = &mode {
        super::frontend_allowed(state, name)?;
    }
    let entitlements =
        crate::solver::entitlements::grant(&request.entitlements, &state.config.entitlements)
            .map_err(to_status)?;
    // Requests refused before this point are not builds.
    let timer = state.metrics.build_started(mode.label());
    let guard = state.jobs.start(&request.r#ref);
    // Internal builds (buildx's own, e.g. reading a remote Dockerfile) are not recorded. A
    // client that disconnects drops this future: the recording then completes the record as
    // cancelled in the background. (No early return from here on: the record must end.)
    let recording = state
        .history
        .get()
        .filter(|_| !request.internal)
        .map(|history| {
            Recording::start(history.clone(), &request, guard.job.clone(), worker.clone())
        });
    // A client that disconnects drops this future: cancel the build's steps with it.
    let _cancel_on_drop = guard.job.cancel.clone().drop_guard();
    let ctx = Arc::new(SolveContext::new(
        guard.job.clone(),
        &worker,
        request.session.clone(),
        entitlements,
    ));
    // If the client goes away this future is dropped mid-way: break the context's reference
    // cycle so its lease is dropped, and with it deleted.
    let clear_on_drop = ClearOnDrop(ctx.clone());
    remote_cache::register_imports(&ctx, request.cache.as_ref());
    let outcome = match mode {
        BuildMode::Definition(graph) => solver
            .solve(graph, ctx.clone())
            .await
            .map(ReturnedResult::single),
        BuildMode::Gateway => gateway_result(state, &request.r#ref, &solver, &ctx).await,
        BuildMode::Frontend(name) => frontend_result(state, &name, &request, &solver, &ctx).await,
    };
    let outcome = match outcome {
        Ok(result) => {
            let exports = Exports {
                outputs: &exports,
                caches: &cache_exports,
            };
            exports.write(&solver, &ctx, result).await
        }
        Err(error) => Err(error),
    };
    let used = ctx.remote_cache.keys(Mode::Max, &[]);
    state.jobs.recent.remember(&request.r#ref, used);
    drop(clear_on_drop);
    // The build's lease goes in the background (shutdown waits for it): the client has its
    // answer without waiting for containerd to delete it.
    drop(ctx);
    timer.finish(match &outcome {
        Ok(_) => "success",
        Err(error) if matches!(error.underlying(), SolveError::Cancelled) => "cancelled",
        Err(_) => "failure",
    });
    let outcome = outcome.map_err(to_status);
    if let Some(recording) = recording {
        let ending = match &outcome {
            Ok(response) => Ending::Exported(response),
            Err(status) => Ending::Failed(status),
        };
        let updates = guard.job.progress.updates();
        recording.completed(ending, &updates).await;
    }
    outcome
}

struct ClearOnDrop(Arc<SolveContext>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// How the build's result is produced.
enum BuildMode {
    /// The request carries the LLB itself (buildctl <= v0.10, the nodekit client).
    Definition(Arc<nodekit_llb::Graph>),
    /// A built-in frontend named by the request (buildctl <= v0.10's Dockerfile builds).
    Frontend(String),
    /// A client-side frontend drives the build through LLBBridge and returns the result.
    Gateway,
}

impl BuildMode {
    /// The build's frontend as metrics name it.
    fn label(&self) -> &str {
        match self {
            BuildMode::Definition(_) => "llb",
            BuildMode::Gateway => "gateway",
            BuildMode::Frontend(name) => name,
        }
    }

    fn of(request: &SolveRequest) -> Result<BuildMode, Status> {
        match (&request.definition, request.frontend.as_str()) {
            (Some(definition), "") => {
                let graph = nodekit_llb::load_or_empty(definition)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                Ok(BuildMode::Definition(Arc::new(graph)))
            }
            (None, "") => Ok(BuildMode::Gateway),
            (_, frontend) => Ok(BuildMode::Frontend(frontend.to_string())),
        }
    }
}

/// Runs a built-in frontend for the request.
async fn frontend_result(
    state: &Arc<ApiState>,
    name: &str,
    request: &SolveRequest,
    solver: &Solver,
    ctx: &Arc<SolveContext>,
) -> Result<ReturnedResult, SolveError> {
    let (build, _) = GatewayBuild::new(solver.clone(), ctx.clone(), frontend_host(state));
    let frontend_request = FrontendRequest {
        options: &request.frontend_attrs,
        inputs: &request.frontend_inputs,
    };
    let outcome = frontend::run(name, &build, frontend_request).await;
    build.close().await;
    outcome
}

/// Registers the build for LLBBridge calls and waits for its frontend to return.
async fn gateway_result(
    state: &Arc<ApiState>,
    id: &str,
    solver: &Solver,
    ctx: &Arc<SolveContext>,
) -> Result<ReturnedResult, SolveError> {
    let (build, returned) = GatewayBuild::new(solver.clone(), ctx.clone(), frontend_host(state));
    let closing = build.close_guard();
    let _registration = state.gateways.register(id, build.clone());
    let outcome = tokio::select! {
        returned = returned => returned.map_err(|_| SolveError::Other("the frontend went away without returning".into())),
        _ = ctx.job.cancel.cancelled() => Err(SolveError::Cancelled),
    };
    closing.close().await;
    match outcome? {
        Returned::Result(result) => Ok(result),
        Returned::Error(status) => Err(SolveError::Returned(status)),
    }
}

/// What serves LLBBridge to the frontend images a build runs.
fn frontend_host(state: &Arc<ApiState>) -> Arc<dyn crate::gateway::FrontendHost> {
    Arc::new(super::frontend_host::ApiFrontendHost(state.clone()))
}

/// Where a build's result goes: the exporters', then the cache exports.
struct Exports<'a> {
    outputs: &'a [Exporter],
    caches: &'a [CacheExport],
}

impl Exports<'_> {
    async fn write(
        &self,
        solver: &Solver,
        ctx: &Arc<SolveContext>,
        result: ReturnedResult,
    ) -> Result<BTreeMap<String, String>, SolveError> {
        let finals = remote_cache::final_layers(&result);
        // The frontend's own answers travel back to the client, as upstream sends them.
        let mut response: BTreeMap<String, String> = result
            .metadata
            .iter()
            .filter(|(key, _)| key.starts_with("frontend."))
            .map(|(key, value)| (key.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        if !self.outputs.is_empty() {
            let mut parts = platform_results(result)?;
            if self.caches.iter().any(|c| c.target == ExportTarget::Inline) {
                remote_cache::add_inline_caches(solver, ctx, &mut parts)?;
            }
            for (index, output) in self.outputs.iter().enumerate() {
                response.extend(output.export(solver, ctx, &parts, index).await?);
            }
        }
        if !self.caches.is_empty() {
            let written = remote_cache::export_caches(solver, ctx, self.caches, &finals).await?;
            response.extend(written);
        }
        Ok(response)
    }
}

/// The progress of build `id`, from its start, until it ends; for a build that has ended, its
/// progress as its history record kept it (`buildctl debug logs`).
pub async fn status(state: &ApiState, id: &str) -> Result<StatusStream, Status> {
    let running = state.jobs.get(id, Duration::ZERO).await;
    if running.is_none() {
        if let Some(updates) = ended_build_progress(state, id)? {
            return Ok(Box::pin(futures::stream::iter(updates.into_iter().map(Ok))));
        }
    }
    let job = match running {
        Some(job) => job,
        None => state
            .jobs
            .get(id, STATUS_WAIT)
            .await
            .ok_or_else(|| Status::not_found(format!("no build {id}")))?,
    };
    Ok(Box::pin(futures::stream::unfold(
        (job, 0usize),
        |(job, seen)| async move {
            let batch = job.progress.next_batch(seen).await?;
            let seen = seen + batch.len();
            let merged = merge(batch);
            Some((Ok(merged), (job, seen)))
        },
    )))
}

pub type StatusStream = super::control::BoxStream<StatusResponse>;

fn ended_build_progress(state: &ApiState, id: &str) -> Result<Option<Vec<StatusResponse>>, Status> {
    match state.history.get() {
        Some(history) => history.stored_progress(id),
        None => Ok(None),
    }
}

/// Several updates as one message (the printer accepts any grouping).
fn merge(batch: Vec<StatusResponse>) -> StatusResponse {
    let mut merged = StatusResponse::default();
    for update in batch {
        merged.vertexes.extend(update.vertexes);
        merged.statuses.extend(update.statuses);
        merged.logs.extend(update.logs);
        merged.warnings.extend(update.warnings);
    }
    merged
}
