//! Gateway builds by their build reference, so LLBBridge calls (which carry the reference in the
//! `buildkit-controlapi-buildid` metadata) find the build they belong to.

use std::sync::Arc;
use std::time::Duration;

use super::GatewayBuild;
use crate::waitmap::WaitMap;

/// How long an LLBBridge call waits for its build to be registered (upstream waits the same).
pub const LOOKUP_WAIT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Gateways {
    builds: WaitMap<Arc<GatewayBuild>>,
}

impl Gateways {
    /// Registers `build` under `id` until the returned guard drops.
    pub fn register(self: &Arc<Self>, id: &str, build: Arc<GatewayBuild>) -> RegistrationGuard {
        self.builds.insert(id, build);
        RegistrationGuard {
            gateways: self.clone(),
            id: id.to_string(),
        }
    }

    /// The build `id`, waiting up to [`LOOKUP_WAIT`] for it to appear.
    pub async fn get(&self, id: &str) -> Option<Arc<GatewayBuild>> {
        self.builds.get(id, LOOKUP_WAIT).await
    }
}

/// Keeps a build registered while its `Control.Solve` runs.
pub struct RegistrationGuard {
    gateways: Arc<Gateways>,
    id: String,
}

impl Drop for RegistrationGuard {
    fn drop(&mut self) {
        self.gateways.builds.remove(&self.id);
    }
}
