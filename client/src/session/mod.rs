//! The client's side of a BuildKit session: `Control.Session` carries an HTTP/2 connection on
//! which this client *serves* gRPC (health, local directories, secrets, registry credentials)
//! for the daemon to call.

mod auth;
mod filesync;
mod secrets;

pub use auth::default_docker_config;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use nodekit_proto::moby::buildkit::secrets::v1::secrets_server::SecretsServer;
use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::filesync::v1::auth_server::AuthServer;
use nodekit_proto::moby::filesync::v1::file_sync_server::FileSyncServer;
use nodekit_proto::session_pipe::byte_pipe;
use nodekit_proto::MAX_MESSAGE;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Server};
use tonic_health::ServingStatus;

/// What the session offers the daemon.
#[derive(Clone, Debug, Default)]
pub struct SessionServices {
    /// Local directories by name (`--local name=dir`).
    pub locals: BTreeMap<String, PathBuf>,
    /// Secret values by id (`--secret id=...`).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// The docker config whose registry credentials the daemon may ask for.
    pub docker_config: Option<PathBuf>,
}

/// A running session; dropping it closes the session.
pub struct ClientSession {
    pub id: String,
    pub shared_key: String,
    task: JoinHandle<()>,
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClientSession {
    /// Opens a session on `channel` serving `services`.
    pub async fn start(
        channel: Channel,
        services: SessionServices,
    ) -> anyhow::Result<ClientSession> {
        let id = random_id();
        let shared_key = shared_key_of(&services);
        let (outgoing_tx, outgoing_rx) = tokio::sync::mpsc::channel(64);
        let mut request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(outgoing_rx));
        add_headers(request.metadata_mut(), &id, &shared_key, &services)?;
        let incoming = ControlClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .session(request)
            .await
            .context("opening the session")?
            .into_inner();
        let (pipe, to_daemon) = byte_pipe(incoming);
        let task = tokio::spawn(async move {
            let forward = forward(to_daemon, outgoing_tx);
            let serve = serve(pipe, services);
            tokio::join!(forward, serve);
        });
        Ok(ClientSession {
            id,
            shared_key,
            task,
        })
    }
}

/// Sends the pipe's outgoing bytes as the request stream.
async fn forward<S>(
    outgoing: S,
    sender: tokio::sync::mpsc::Sender<nodekit_proto::moby::buildkit::v1::BytesMessage>,
) where
    S: futures::Stream<
        Item = Result<nodekit_proto::moby::buildkit::v1::BytesMessage, tonic::Status>,
    >,
{
    use futures::StreamExt;
    let mut outgoing = std::pin::pin!(outgoing);
    while let Some(Ok(message)) = outgoing.next().await {
        if sender.send(message).await.is_err() {
            break;
        }
    }
}

/// Serves the session's services on our end of the pipe until it closes.
async fn serve(pipe: nodekit_proto::session_pipe::SessionPipe, services: SessionServices) {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    let filesync = FileSyncServer::new(filesync::LocalDirs::new(services.locals))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let secrets = SecretsServer::new(secrets::StaticSecrets::new(services.secrets));
    let auth = services
        .docker_config
        .map(|file| AuthServer::new(auth::DockerConfigAuth::new(file)));
    let incoming = futures::stream::once(async move { Ok::<_, std::io::Error>(pipe) });
    let served = Server::builder()
        .add_service(health_service)
        .add_service(filesync)
        .add_service(secrets)
        .add_optional_service(auth)
        .serve_with_incoming(incoming)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "session server ended");
    }
}

/// The `x-docker-expose-session-*` headers: who we are and which methods we serve.
fn add_headers(
    metadata: &mut tonic::metadata::MetadataMap,
    id: &str,
    shared_key: &str,
    services: &SessionServices,
) -> anyhow::Result<()> {
    metadata.insert("x-docker-expose-session-uuid", id.parse()?);
    metadata.insert("x-docker-expose-session-name", "nodekit".parse()?);
    metadata.insert("x-docker-expose-session-sharedkey", shared_key.parse()?);
    let mut methods = vec![
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    ];
    if !services.locals.is_empty() {
        methods.push("/moby.filesync.v1.FileSync/DiffCopy");
    }
    if !services.secrets.is_empty() {
        methods.push("/moby.buildkit.secrets.v1.Secrets/GetSecret");
    }
    if services.docker_config.is_some() {
        methods.push("/moby.filesync.v1.Auth/Credentials");
    }
    for method in methods {
        metadata.append("x-docker-expose-session-grpc-method", method.parse()?);
    }
    Ok(())
}

/// A key stable across this machine's builds of the same directories: the daemon keeps its
/// copies of local directories under it, so the next build sends only what changed.
fn shared_key_of(services: &SessionServices) -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    hasher.update(host.trim().as_bytes());
    for (name, dir) in &services.locals {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        hasher.update(format!("\0{name}\0{}", dir.display()).as_bytes());
    }
    format!("nodekit-{}", &hasher.finalize().to_hex()[..32])
}

/// A random id in the shape buildctl uses (25 lower-case alphanumerics).
pub fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..25)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
