//! The gRPC API nodekitd serves: BuildKit's Control service (and, with the solver, the
//! LLBBridge gateway), and nodekit's own CacheBundle service (cache export and import). Translates wire messages into domain calls; no business logic here.

mod bridge;
mod bundle;
mod cache;
mod control;
mod remote_cache;
mod solve;
mod unsupported;
mod workers;

use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::control_server::ControlServer;
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_server::LlbBridgeServer;
use nodekit_proto::nodekit::cache::v1::cache_bundle_server::CacheBundleServer;
use nodekit_proto::MAX_MESSAGE;
use tonic::service::Routes;

use crate::config::Config;
use crate::gateway::Gateways;
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

    fn unavailable(&self) -> tonic::Status {
        {
            tonic::Status::unavailable(format!(
                "containerd at {} is not reachable yet",
                self.config.worker.socket.display()
            ))
        }
    }
}

/// Every service on one router, with upstream's message size limits.
pub fn routes(state: Arc<ApiState>, routes: Routes) -> Routes {
    let control = ControlServer::new(control::ControlService::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let bridge = LlbBridgeServer::new(bridge::BridgeService::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    // nodekit's own; its messages are chunks of at most 1 MiB.
    let bundles = CacheBundleServer::new(bundle::CacheBundleService::new(state));
    routes
        .add_service(control)
        .add_service(bridge)
        .add_service(bundles)
}
