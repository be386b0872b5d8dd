//! What the API layer provides to the frontend images a build runs: the daemon's policy on
//! which may run, and the LLBBridge service on their stdio. Frontends reach both through this
//! trait, so they need not know the API.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::DuplexStream;

use super::GatewayBuild;
use crate::solver::SolveError;

pub trait FrontendHost: Send + Sync {
    /// Whether frontend image `source` may run (`[frontend."gateway.v0"]` of the config).
    fn allow_source(&self, source: &str) -> Result<(), SolveError>;

    /// The workers as a frontend image reads them (`BUILDKIT_WORKERS`: buildkitd's JSON).
    fn workers(&self) -> String;

    /// Serves `moby.buildkit.v1.frontend.LLBBridge` (and health) for `build` alone on
    /// `connection`, until the connection closes or `shutdown` resolves.
    fn serve(
        &self,
        build: Arc<GatewayBuild>,
        connection: DuplexStream,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<(), String>>;
}
