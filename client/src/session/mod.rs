//! The client's side of a BuildKit session: `Control.Session` carries an HTTP/2 connection on
//! which this client *serves* gRPC (health, local directories, secrets, registry credentials,
//! local content stores) for the daemon to call.

mod auth;
pub mod content;
mod filesend;
mod filesync;
mod secrets;
mod ssh;

pub use auth::default_docker_config;
pub use filesend::Output;

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

/// The most header bytes a call to the session may carry (grpc-go's default).
const MAX_HEADER_LIST: u32 = 16 << 20;

/// What the session offers the daemon.
#[derive(Clone, Debug, Default)]
pub struct SessionServices {
    /// Local directories by name (`--local name=dir`).
    pub locals: BTreeMap<String, PathBuf>,
    /// Secret values by id (`--secret id=...`).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// The docker config whose registry credentials the daemon may ask for.
    pub docker_config: Option<PathBuf>,
    /// Content stores by store id (`local:<dir>` for a local cache export's `dest` or import's
    /// `src`, see [`content::local_store_id`]) to the directory the daemon reads and writes.
    pub content_stores: BTreeMap<String, PathBuf>,
    /// Where the daemon sends an exporter's output (a file, `-` for standard output, or a
    /// directory), by the exporter's index.
    pub outputs: BTreeMap<usize, Output>,
    /// SSH agents forwarded to builds (`--ssh`): their sockets by id.
    pub ssh_agents: BTreeMap<String, PathBuf>,
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
    let content = (!services.content_stores.is_empty())
        .then(|| content::ContentStores::new(services.content_stores).into_server());
    let outputs = (!services.outputs.is_empty())
        .then(|| filesend::FileSendServer::new(filesend::Outputs::new(services.outputs)));
    let agents = (!services.ssh_agents.is_empty())
        .then(|| ssh::Agents::new(services.ssh_agents).into_server());
    let incoming = futures::stream::once(async move { Ok::<_, std::io::Error>(pipe) });
    let served = Server::builder()
        // The daemon's calls carry a directory's patterns in their headers (a .dockerignore
        // of some thousand lines): take what grpc-go's server takes, where hyper's 16 KiB
        // default refused them (HTTP 431).
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .add_service(health_service)
        .add_service(filesync)
        .add_service(secrets)
        .add_optional_service(auth)
        .add_optional_service(content)
        .add_optional_service(outputs)
        .add_optional_service(agents)
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
    if !services.content_stores.is_empty() {
        methods.extend(content::METHODS);
    }
    if !services.outputs.is_empty() {
        methods.push(filesend::METHOD);
    }
    if !services.ssh_agents.is_empty() {
        methods.extend(ssh::METHODS);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;
    use hyper_util::rt::TokioIo;
    use nodekit_proto::containerd::services::content::v1::content_client::ContentClient;
    use nodekit_proto::containerd::services::content::v1::{
        InfoRequest, WriteAction, WriteContentRequest,
    };
    use nodekit_proto::moby::buildkit::v1::BytesMessage;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tonic::transport::Endpoint;

    use super::*;

    /// Copies one end's outgoing messages into the other end's incoming channel.
    fn wire(
        outgoing: impl futures::Stream<Item = Result<BytesMessage, tonic::Status>> + Send + 'static,
        incoming: mpsc::Sender<Result<BytesMessage, tonic::Status>>,
    ) {
        tokio::spawn(async move {
            let mut outgoing = std::pin::pin!(outgoing);
            while let Some(message) = outgoing.next().await {
                if incoming.send(message).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Serves `services` on one end of an in-process session pipe and dials the other end,
    /// as the daemon does.
    async fn session_channel(services: SessionServices) -> Channel {
        let (to_client, client_incoming) = mpsc::channel(16);
        let (to_daemon, daemon_incoming) = mpsc::channel(16);
        let (client_pipe, client_outgoing) = byte_pipe(ReceiverStream::new(client_incoming));
        let (daemon_pipe, daemon_outgoing) = byte_pipe(ReceiverStream::new(daemon_incoming));
        wire(client_outgoing, to_daemon);
        wire(daemon_outgoing, to_client);
        tokio::spawn(serve(client_pipe, services));
        let pipe = Arc::new(Mutex::new(Some(daemon_pipe)));
        let connector = tower::service_fn(move |_| {
            let taken = pipe.lock().unwrap().take();
            async move {
                taken
                    .map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("dialled twice"))
            }
        });
        Endpoint::from_static("http://localhost")
            .connect_with_connector(connector)
            .await
            .unwrap()
    }

    fn with_store<T>(message: T, id: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value = id.parse().unwrap();
        request.metadata_mut().insert(content::STORE_ID_KEY, value);
        request
    }

    #[tokio::test]
    async fn content_stores_are_served_on_the_session() {
        let tmp = tempfile::tempdir().unwrap();
        let id = content::local_store_id("cache-dir");
        let services = SessionServices {
            content_stores: BTreeMap::from([(id.clone(), tmp.path().to_path_buf())]),
            ..Default::default()
        };
        let mut client = ContentClient::new(session_channel(services).await);
        let digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let commit = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: "hello".into(),
            total: 5,
            expected: digest.into(),
            data: bytes::Bytes::from_static(b"hello"),
            ..Default::default()
        };
        let stream = futures::stream::iter([commit]);
        let mut responses = client
            .write(with_store(stream, &id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(responses.message().await.unwrap().unwrap().digest, digest);
        let info = InfoRequest {
            digest: digest.into(),
        };
        let info = client.info(with_store(info, &id)).await.unwrap();
        assert_eq!(info.into_inner().info.unwrap().size, 5);
    }

    #[tokio::test]
    async fn without_content_stores_the_service_is_not_there() {
        let mut client = ContentClient::new(session_channel(SessionServices::default()).await);
        let info = InfoRequest {
            digest: format!("sha256:{}", "0".repeat(64)),
        };
        let status = client.info(with_store(info, "local:x")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }

    #[test]
    fn the_content_methods_are_announced_with_the_stores() {
        let announced = |services: &SessionServices| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            add_headers(&mut metadata, "id", "key", services).unwrap();
            metadata
                .get_all("x-docker-expose-session-grpc-method")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let without = announced(&SessionServices::default());
        assert!(!without.iter().any(|m| m.contains("content")));
        let with = announced(&SessionServices {
            content_stores: BTreeMap::from([("local:d".into(), PathBuf::from("d"))]),
            ..Default::default()
        });
        for method in content::METHODS {
            assert!(with.iter().any(|m| m == method), "{method} not announced");
        }
    }
}
