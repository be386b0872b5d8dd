//! LLBBridge on a frontend image's stdio: one HTTP/2 connection carried over the process's
//! stdin (nodekitd writes) and stdout (nodekitd reads), serving the frontend's build alone.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_server::LlbBridgeServer;
use nodekit_proto::moby::buildkit::v1::types::WorkerRecord;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use super::bridge::BridgeService;
use super::ApiState;
use crate::gateway::{FrontendHost, GatewayBuild};
use crate::solver::SolveError;

/// buildkitd's message size limit on a frontend's connection.
const FRONTEND_MESSAGE: usize = 16 << 20;

/// The API's [`FrontendHost`].
pub struct ApiFrontendHost(pub Arc<ApiState>);

impl FrontendHost for ApiFrontendHost {
    fn allow_source(&self, source: &str) -> Result<(), SolveError> {
        let config = &self.0.config;
        if !config.gateway_frontend {
            return Err(SolveError::NotAllowed(format!(
                "frontend image {source}: frontend {} is turned off by the daemon's config ([frontend.\"gateway.v0\"] enabled = false)",
                crate::frontend::GATEWAY
            )));
        }
        if config.gateway_allowed_repositories.is_empty() {
            return Ok(());
        }
        let repository = nodekit_oci::Reference::parse_normalized(source)
            .map_err(|e| {
                SolveError::InvalidDefinition(format!("frontend image {source}: {}", e.0))
            })?
            .repository();
        if config.gateway_allowed_repositories.contains(&repository) {
            return Ok(());
        }
        // buildkitd's words.
        Err(SolveError::NotAllowed(format!(
            "'{source}' is not an allowed gateway source ([frontend.\"gateway.v0\"] allowedRepositories)"
        )))
    }

    fn workers(&self) -> String {
        let Ok(worker) = self.0.worker() else {
            return "[]".to_string();
        };
        let record = super::worker_record(&self.0.worker_id, worker, &self.0.config);
        serde_json::Value::Array(vec![worker_json(&record)]).to_string()
    }

    fn serve(
        &self,
        build: Arc<GatewayBuild>,
        connection: DuplexStream,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<(), String>> {
        let bridge = LlbBridgeServer::new(BridgeService::for_build(self.0.clone(), build))
            .max_decoding_message_size(FRONTEND_MESSAGE)
            .max_encoding_message_size(FRONTEND_MESSAGE);
        // Frontends may check the connection's health, as buildkitd serves it there too.
        let (_, health) = tonic_health::server::health_reporter();
        // The one connection, then nothing: an incoming stream that ended would start the
        // server's graceful shutdown (a GOAWAY to the frontend) at once.
        let incoming = futures::stream::iter([Ok::<_, io::Error>(Connection(connection))])
            .chain(futures::stream::pending());
        async move {
            tonic::transport::Server::builder()
                .add_service(health)
                .add_service(bridge)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }
}

/// A worker as buildkitd's `client.WorkerInfo` encodes it in JSON (its GC policy and CDI
/// devices left out: no frontend reads them).
fn worker_json(record: &WorkerRecord) -> serde_json::Value {
    let platforms: Vec<serde_json::Value> = record
        .platforms
        .iter()
        .map(|p| {
            let mut platform = serde_json::json!({"architecture": p.architecture, "os": p.os});
            if !p.variant.is_empty() {
                platform["variant"] = p.variant.clone().into();
            }
            platform
        })
        .collect();
    let version = record.buildkit_version.clone().unwrap_or_default();
    serde_json::json!({
        "id": record.id,
        "labels": record.labels,
        "platforms": platforms,
        "buildkitVersion": {
            "package": version.package,
            "version": version.version,
            "revision": version.revision,
        },
    })
}

/// The frontend's end of the pipe, as tonic takes a connection.
struct Connection(DuplexStream);

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
