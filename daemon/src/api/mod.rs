//! The gRPC API nodekitd serves: BuildKit's Control service (and, with the solver, the
//! LLBBridge gateway, the build history's read-only content service), and nodekit's own CacheBundle service (cache export and import). Translates wire messages into domain calls; no business logic here.

mod bridge;
mod bundle;
mod cache;
mod control;
pub(crate) mod errors;
mod frontend_host;
mod history;
mod remote_cache;
mod solve;
mod unsupported;
mod workers;

use std::sync::Arc;

use nodekit_proto::containerd::services::content::v1::content_server::ContentServer;
use nodekit_proto::moby::buildkit::v1::control_server::ControlServer;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_server::LlbBridgeServer;
use nodekit_proto::nodekit::cache::v1::cache_bundle_server::CacheBundleServer;
use nodekit_proto::MAX_MESSAGE;
use tonic::service::Routes;

use crate::config::Config;
use crate::gateway::Gateways;
use crate::history::BuildHistory;
use crate::session::SessionManager;
use crate::solver::{Jobs, Solver};
use crate::worker::Worker;

pub use workers::{load_or_create_worker_id, worker_record};

/// What the API services share.
pub struct ApiState {
    pub config: Config,
    /// Set once containerd answers; until then worker-bound calls say it is unavailable.
    pub worker: tokio::sync::OnceCell<Worker>,
    /// Set with the worker.
    pub solver: tokio::sync::OnceCell<Solver>,
    /// Set with the solver when it has a cache index (the records are kept in its file).
    pub history: tokio::sync::OnceCell<Arc<BuildHistory>>,
    pub sessions: Arc<SessionManager>,
    pub jobs: Arc<Jobs>,
    /// Builds driven through LLBBridge, by build reference.
    pub gateways: Arc<Gateways>,
    /// Stable across restarts (kept under --root).
    pub worker_id: String,
    pub metrics: crate::metrics::Metrics,
    /// Set when shutdown begins: new builds are refused, running ones may finish.
    pub draining: std::sync::atomic::AtomicBool,
}

impl ApiState {
    pub fn worker(&self) -> Result<&Worker, tonic::Status> {
        self.worker.get().ok_or_else(|| self.unavailable())
    }

    /// Refuses a new build once shutdown has begun.
    pub fn accepting_builds(&self) -> Result<(), tonic::Status> {
        if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tonic::Status::unavailable(
                "nodekitd is shutting down: it lets running builds finish but takes no new ones",
            ));
        }
        Ok(())
    }

    pub fn solver(&self) -> Result<&Solver, tonic::Status> {
        self.solver.get().ok_or_else(|| self.unavailable())
    }

    pub fn history(&self) -> Result<&Arc<BuildHistory>, tonic::Status> {
        match (self.solver.get(), self.history.get()) {
            (_, Some(history)) => Ok(history),
            (None, None) => Err(self.unavailable()),
            (Some(_), None) => Err(tonic::Status::unavailable(
                "build history is kept in the cache index, which did not open (see nodekitd's log)",
            )),
        }
    }

    fn unavailable(&self) -> tonic::Status {
        {
            tonic::Status::unavailable(format!(
                "containerd at {} is not reachable yet",
                self.config.worker.socket.display()
            ))
        }
    }
}

/// Refuses `gateway.v0` when the config turned it off (`[frontend."gateway.v0"] enabled = false`).
fn frontend_allowed(state: &ApiState, name: &str) -> Result<(), tonic::Status> {
    if name == crate::frontend::GATEWAY && !state.config.gateway_frontend {
        return Err(tonic::Status::permission_denied(format!(
            "frontend {name} is turned off by the daemon's config ([frontend.\"gateway.v0\"] enabled = false)"
        )));
    }
    Ok(())
}

/// Every service on one router, with upstream's message size limits.
pub fn routes(state: Arc<ApiState>, routes: Routes) -> Routes {
    let control = ControlServer::new(control::ControlService::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let bridge = LlbBridgeServer::new(bridge::BridgeService::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    // History blobs, read as buildkitd serves them (chunks of at most 1 MiB).
    let content = ContentServer::new(history::HistoryContent::new(state.clone()));
    // nodekit's own; its messages are chunks of at most 1 MiB.
    let bundles = CacheBundleServer::new(bundle::CacheBundleService::new(state));
    routes
        .add_service(control)
        .add_service(bridge)
        .add_service(content)
        .add_service(bundles)
}
