//! `moby.sshforward.v1.SSH`: the client's SSH agents forwarded to builds (`--ssh
//! default[=SOCKET]`, `--ssh ID=SOCKET`). Each ForwardAgent stream is one connection to the
//! agent's socket, its bytes copied both ways; keys never leave the agent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use nodekit_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use nodekit_proto::moby::sshforward::v1::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tonic::{Request, Response, Status, Streaming};

pub const METHODS: [&str; 2] = [
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];
/// The metadata naming the agent of a ForwardAgent stream (empty: `default`).
const ID_KEY: &str = "buildkit.ssh.id";

/// The agents' sockets by id.
pub struct Agents {
    sockets: BTreeMap<String, PathBuf>,
}

impl Agents {
    pub fn new(sockets: BTreeMap<String, PathBuf>) -> Self {
        Agents { sockets }
    }

    pub fn into_server(self) -> SshServer<Agents> {
        SshServer::new(self)
    }

    fn socket(&self, id: &str) -> Result<&PathBuf, Status> {
        let id = if id.is_empty() { "default" } else { id };
        self.sockets
            .get(id)
            .ok_or_else(|| Status::not_found(format!("unset ssh forward key {id}")))
    }
}

type Forwarded = Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Ssh for Agents {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        self.socket(&request.into_inner().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = Forwarded;

    async fn forward_agent(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let socket = self.socket(&id)?.clone();
        let agent = UnixStream::connect(&socket)
            .await
            .map_err(|e| Status::unavailable(format!("ssh agent {}: {e}", socket.display())))?;
        let (from_agent, mut to_agent) = agent.into_split();
        let mut from_daemon = request.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(message)) = from_daemon.next().await {
                if to_agent.write_all(&message.data).await.is_err() {
                    break;
                }
            }
            let _ = to_agent.shutdown().await;
        });
        let state = (from_agent, vec![0u8; 32 << 10]);
        let replies = futures::stream::unfold(state, |(mut from_agent, mut buffer)| async move {
            match from_agent.read(&mut buffer).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    let data = bytes::Bytes::copy_from_slice(&buffer[..n]);
                    Some((Ok(BytesMessage { data }), (from_agent, buffer)))
                }
            }
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
