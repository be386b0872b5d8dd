//! The gRPC channel to containerd, with errors that name the socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::version_client::VersionClient;
use tonic::transport::Channel;

use super::error::WorkerError;

/// How long one connection attempt may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What containerd says about itself on connect.
#[derive(Clone, Debug, Default)]
pub struct ContainerdInfo {
    pub version: String,
    /// The instance's UUID (Introspection.Server), reported in ListWorkers labels.
    pub uuid: String,
}

/// Connects to containerd at `socket` and checks that it answers, failing within seconds.
pub async fn connect(socket: &Path) -> Result<(Channel, ContainerdInfo), WorkerError> {
    let unreachable = |reason: String| WorkerError::Unreachable {
        socket: socket.to_path_buf(),
        reason,
    };
    if !socket.exists() {
        return Err(unreachable("no such socket".into()));
    }
    let attempt = async {
        let channel = containerd_client::connect(socket)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let version = VersionClient::new(channel.clone())
            .version(())
            .await
            .map_err(|status| unreachable(status.message().to_string()))?
            .into_inner();
        // Older containerd lacks Introspection.Server; the UUID is informational only.
        let uuid = IntrospectionClient::new(channel.clone())
            .server(())
            .await
            .map(|r| r.into_inner().uuid)
            .unwrap_or_default();
        let info = ContainerdInfo {
            version: version.version,
            uuid,
        };
        Ok((channel, info))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
}

/// Keeps trying to connect with exponential backoff (1 s doubling to 30 s), logging each
/// failure plainly; returns once containerd answers.
pub async fn connect_with_backoff(socket: PathBuf) -> (Channel, ContainerdInfo) {
    let mut delay = Duration::from_secs(1);
    loop {
        match connect(&socket).await {
            Ok(connected) => return connected,
            Err(error) => {
                tracing::error!(%error, retry_in = ?delay, "containerd is not reachable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// `error` and its sources, as one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their source's words: say them once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
