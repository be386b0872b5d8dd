//! Session health: like upstream, the daemon checks the client's gRPC health service every
//! 5 s (15 s timeout); two failures in a row end the session.

use std::sync::Arc;
use std::time::Duration;

use nodekit_proto::grpc::health::v1::health_client::HealthClient;
use nodekit_proto::grpc::health::v1::HealthCheckRequest;

use super::manager::{Session, SessionManager};

const INTERVAL: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(15);
const ALLOWED_FAILURES: u32 = 2;

/// Watches `session` until it closes or stops answering; then removes it.
pub fn watch(manager: Arc<SessionManager>, session: Arc<Session>) {
    tokio::spawn(async move {
        let mut failures = 0;
        let mut client = HealthClient::new(session.channel.clone());
        loop {
            tokio::select! {
                _ = session.closed.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            let check = client.check(HealthCheckRequest {
                service: String::new(),
            });
            match tokio::time::timeout(TIMEOUT, check).await {
                Ok(Ok(_)) => failures = 0,
                _ => failures += 1,
            }
            if failures >= ALLOWED_FAILURES {
                tracing::warn!(session = %session.id, "session stopped answering health checks; closing it");
                manager.remove(&session.id);
                return;
            }
        }
    });
}
