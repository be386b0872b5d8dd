//! Frontend images (`--frontend gateway.v0 --opt source=IMAGE`, `# syntax=IMAGE`), run as
//! buildkitd runs them: the image is resolved and its filesystem solved like any image (so it
//! is cached like any), then it runs as a container on the worker, and its process drives a
//! build of its own through the LLBBridge served over its stdin and stdout. That build shares
//! the session, lease and progress of the build that runs it; what the frontend returns is the
//! result.

mod environment;
mod metadata;
mod stdio;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use nodekit_proto::moby::buildkit::v1::frontend::NewContainerRequest;
use nodekit_proto::pb;
use tokio::sync::{mpsc, oneshot};

use super::FrontendRequest;
use crate::gateway::{GatewayBuild, GatewayContainer, Returned, ReturnedResult};
use crate::oci::Platform;
use crate::session::SessionCredentials;
use crate::solver::SolveError;
use crate::worker::exec::{ProcessRequest, StreamSet};
use crate::worker::ResolveMode;
use environment::FrontendImage;
use metadata::FrontendMetadata;

/// The id of the frontend's own container among its build's containers.
const FRONTEND_CONTAINER: &str = "nodekit-frontend";

/// How long the bridge may take to finish its last calls once the frontend has exited.
const BRIDGE_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Runs frontend image `source` within `parent` on `request`'s options and inputs.
pub async fn run(
    parent: &Arc<GatewayBuild>,
    source: &str,
    request: FrontendRequest<'_>,
) -> Result<ReturnedResult, SolveError> {
    parent.host.allow_source(source)?;
    environment::refuse_unsupported(source, request.options)?;
    let image = resolve(parent, source).await?;
    environment::check_caps(source, &image, request.options, request.inputs)?;
    let (build, returned) = parent.child(request.inputs.clone());
    let closing = build.close_guard();
    let ran = run_process(&build, &image, request.options).await;
    closing.close().await;
    outcome(source, ran?, returned)
}

/// The frontend image's name, config and filesystem (solved within `parent`, so its pull or
/// cache hit shows in the build's progress like any image's).
async fn resolve(parent: &GatewayBuild, source: &str) -> Result<FrontendImage, SolveError> {
    let platform = Platform::native();
    let credentials =
        SessionCredentials::new(parent.solver.sessions.clone(), &parent.ctx.session_id);
    let resolved = parent
        .solver
        .worker
        .resolve_image_with(source, &platform, ResolveMode::Default, &credentials)
        .await
        .map_err(|e| SolveError::Frontend(format!("frontend image {source}: {e}")))?;
    let state = nodekit_llb_builder::Image::new(&resolved.name)
        .platform(super::dockerfile::convert::wire_platform(&platform))
        .into_state();
    let definition = nodekit_llb_builder::marshal(&state)
        .map_err(|e| SolveError::Other(format!("frontend image {source}: {e}")))?;
    let root = parent.solve_ref(&definition).await?;
    Ok(FrontendImage {
        name: resolved.name,
        config: resolved.image.config.config().clone(),
        root,
        definition,
    })
}

/// How the frontend's process ended, and the end of what it wrote to stderr.
struct Ran {
    exit: Result<u32, crate::worker::WorkerError>,
    stderr: String,
}

/// Runs the frontend's process with the bridge on its stdio until it exits.
async fn run_process(
    build: &Arc<GatewayBuild>,
    image: &FrontendImage,
    options: &BTreeMap<String, String>,
) -> Result<Ran, SolveError> {
    let metadata =
        FrontendMetadata::write(build.solver.worker.mount_source_root(), &image.definition)?;
    let container = create_container(build, image, &metadata).await?;
    let process = ProcessRequest {
        process: environment::process(image, options, build),
        streams: StreamSet {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        },
        privileged: false,
    };
    let (sink, output) = mpsc::channel(64);
    let mut started = container
        .inner
        .start(process, sink)
        .await
        .map_err(|e| SolveError::worker(format!("starting frontend {}", image.name), e))?;
    let stdin = started
        .stdin
        .take()
        .ok_or_else(|| SolveError::Other("the frontend's process has no stdin".into()))?;
    let control = started.control.clone();
    let (daemon_end, frontend_end) = tokio::io::duplex(stdio::BUFFER);
    let stderr = stdio::connect(frontend_end, stdin, output, control.clone(), &image.name);
    let bridge = Bridge::serve(build, daemon_end);
    let exit = tokio::select! {
        waited = control.wait() => waited,
        // Closing the build kills the process.
        _ = build.ctx.job.cancel.cancelled() => return Err(SolveError::Cancelled),
    };
    started.finish().await;
    bridge.close(&image.name).await;
    let stderr = stderr.await.unwrap_or_default();
    // The process has exited: nothing has the directory mounted any more.
    drop(metadata);
    Ok(Ran { exit, stderr })
}

/// The frontend's container, with its metadata mounted where it fits.
async fn create_container(
    build: &GatewayBuild,
    image: &FrontendImage,
    metadata: &FrontendMetadata,
) -> Result<Arc<GatewayContainer>, SolveError> {
    let root_id = build.adopt(image.root.clone());
    let own_mounts = if metadata_fits(build, &root_id).await? {
        vec![metadata.mount()]
    } else {
        Vec::new()
    };
    build
        .containers
        .create_with(build, container_request(root_id, image), own_mounts)
        .await
        .map_err(|status| SolveError::Frontend(status.message().to_string()))?;
    build
        .containers
        .get(FRONTEND_CONTAINER)
        .map_err(|status| SolveError::Other(status.message().to_string()))
}

/// The LLBBridge served to the frontend on its end of the pipe.
struct Bridge {
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), String>>,
}

impl Bridge {
    fn serve(build: &Arc<GatewayBuild>, daemon_end: tokio::io::DuplexStream) -> Bridge {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = build
            .host
            .serve(build.clone(), daemon_end, shutdown.boxed());
        Bridge {
            stop,
            server: tokio::spawn(served),
        }
    }

    /// Stops serving, once the calls in flight have finished (bounded).
    async fn close(self, frontend: &str) {
        let _ = self.stop.send(());
        if let Ok(Ok(Err(error))) = tokio::time::timeout(BRIDGE_CLOSE_WAIT, self.server).await {
            tracing::debug!(frontend, error, "the frontend's bridge ended");
        }
    }
}

/// Whether the metadata directory can be mounted in the image: not when its `/run` is a file
/// (a frontend program at `/run`, the default entrypoint), where buildkitd fails to start the
/// frontend at all.
async fn metadata_fits(build: &GatewayBuild, root_id: &str) -> Result<bool, SolveError> {
    let view = build.view(root_id).await?;
    let run = std::fs::symlink_metadata(view.path().join("run"));
    Ok(run.map_or(true, |m| m.is_dir() || m.is_symlink()))
}

/// The frontend's container: its image's filesystem, writable, as root; no network when the
/// image's label asks for none.
fn container_request(root_id: String, image: &FrontendImage) -> NewContainerRequest {
    NewContainerRequest {
        container_id: FRONTEND_CONTAINER.to_string(),
        mounts: vec![pb::Mount {
            dest: "/".to_string(),
            result_id: root_id,
            mount_type: pb::MountType::Bind as i32,
            ..Default::default()
        }],
        network: environment::network(image) as i32,
        ..Default::default()
    }
}

/// The build's result, as upstream decides it: an error the frontend returned comes first,
/// then its process's failure, then the result it returned.
fn outcome(
    source: &str,
    ran: Ran,
    mut returned: oneshot::Receiver<Returned>,
) -> Result<ReturnedResult, SolveError> {
    let returned = returned.try_recv().ok();
    let stderr = match ran.stderr.trim_end() {
        "" => String::new(),
        tail => format!("; its stderr ended with:\n{tail}"),
    };
    match (returned, ran.exit) {
        (Some(Returned::Error(status)), _) => Err(SolveError::Returned(status)),
        (Some(Returned::Result(result)), Ok(0)) => Ok(result),
        (None, Ok(0)) => Err(SolveError::Frontend(format!(
            "frontend {source}: no result for incomplete build (it exited without calling Return){stderr}"
        ))),
        (_, Ok(code)) => Err(SolveError::Frontend(format!(
            "frontend {source} did not complete successfully: exit code: {code}{stderr}"
        ))),
        (_, Err(error)) => Err(SolveError::worker(format!("frontend {source}"), error)),
    }
}
