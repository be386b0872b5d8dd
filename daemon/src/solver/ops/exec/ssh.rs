//! SSH agent forwarding (`RUN --mount=type=ssh`): a unix socket on a private tmpfs under the
//! local-mount-source-root, bind-mounted into the step; each connection to it is carried to
//! the client's agent over the session (`moby.sshforward.v1.SSH/ForwardAgent`). Nothing of the
//! agent reaches a snapshot or a cache key: the mount's id, target and mode are in the op, the
//! keys stay on the client. Git sources over ssh use the same socket, outside any step.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use nodekit_proto::moby::sshforward::v1::ssh_client::SshClient;
use nodekit_proto::moby::sshforward::v1::{BytesMessage, CheckAgentRequest};
use nodekit_proto::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::worker::exec::{ExtraMount, MountSource};
use crate::worker::ViewMount;

const CHECK_AGENT: &str = "/moby.sshforward.v1.SSH/CheckAgent";
/// The metadata naming the agent of a ForwardAgent stream.
const ID_KEY: &str = "buildkit.ssh.id";
const DEFAULT_MODE: u32 = 0o600;
/// Bytes read from the socket user's side of a connection at once.
const CHUNK: usize = 32 << 10;

/// A forwarded agent: its socket's tmpfs and the task serving it, both gone when dropped.
pub struct Forwarded {
    socket: PathBuf,
    _dir: ViewMount,
    serving: JoinHandle<()>,
}

impl Forwarded {
    /// The socket whose connections reach the client's agent.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// Which of the client's agents to forward, and who may use its socket.
pub struct SocketOptions {
    /// The agent's id (`buildkit.ssh.id`); empty means `default`.
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Whether a client that does not forward the agent is fine (None) rather than an error.
    pub optional: bool,
}

/// The SSH mount, or None when the client forwards no such agent and the mount is optional.
pub async fn mount(
    op: &OpContext<'_>,
    mount: &pb::Mount,
) -> Result<Option<(ExtraMount, Forwarded)>, SolveError> {
    let options = mount.ssh_opt.clone().unwrap_or_default();
    let socket = SocketOptions {
        id: options.id,
        uid: options.uid,
        gid: options.gid,
        mode: if options.mode == 0 {
            DEFAULT_MODE
        } else {
            options.mode & 0o777
        },
        optional: options.optional,
    };
    let Some(forwarded) = forward(op, &socket).await? else {
        return Ok(None);
    };
    let extra = ExtraMount {
        destination: mount.dest.clone(),
        source: MountSource::Bind {
            source: forwarded.socket.clone(),
            readonly: false,
        },
    };
    Ok(Some((extra, forwarded)))
}

/// A socket forwarding each connection to the client's agent `options.id` (steps bind-mount
/// it; Git sources hand it to ssh as `SSH_AUTH_SOCK`). None when the client does not forward
/// the agent and that is allowed.
pub async fn forward(
    op: &OpContext<'_>,
    options: &SocketOptions,
) -> Result<Option<Forwarded>, SolveError> {
    let id = if options.id.is_empty() {
        "default".to_string()
    } else {
        options.id.clone()
    };
    let Some(channel) = agent_channel(op, &id, options.optional).await? else {
        return Ok(None);
    };
    let dir = op
        .solver
        .worker
        .secret_dir()
        .map_err(|e| SolveError::worker("preparing an SSH agent socket", e))?;
    let socket = dir.path().join("ssh_auth_sock");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| SolveError::Other(format!("SSH agent socket {}: {e}", socket.display())))?;
    set_owner_and_mode(&socket, options.uid, options.gid, options.mode)
        .map_err(|e| SolveError::Other(format!("SSH agent socket {}: {e}", socket.display())))?;
    let serving = tokio::spawn(serve(listener, channel, id));
    Ok(Some(Forwarded {
        socket,
        _dir: dir,
        serving,
    }))
}

/// The session's channel if the client forwards agent `id`; None if it does not and that is
/// allowed, else upstream's error.
async fn agent_channel(
    op: &OpContext<'_>,
    id: &str,
    optional: bool,
) -> Result<Option<Channel>, SolveError> {
    let session = op.session().await?;
    let forwarded = session.serves(CHECK_AGENT) && {
        let request = CheckAgentRequest { id: id.to_string() };
        let mut client = SshClient::new(session.channel.clone());
        client.check_agent(request).await.is_ok()
    };
    match (forwarded, optional) {
        (true, _) => Ok(Some(session.channel.clone())),
        (false, true) => Ok(None),
        (false, false) => Err(SolveError::Session(format!(
            "no SSH key {id:?} forwarded from the client"
        ))),
    }
}

fn set_owner_and_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).map_err(std::io::Error::from)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Accepts connections until the socket's user is done (the task is aborted).
async fn serve(listener: UnixListener, channel: Channel, id: String) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(carry(stream, channel.clone(), id.clone()));
    }
}

/// One connection: its bytes to the client's agent and back, until either side ends.
async fn carry(stream: UnixStream, channel: Channel, id: String) {
    let (mut from_user, mut to_user) = stream.into_split();
    let (sender, outgoing) = tokio::sync::mpsc::channel::<BytesMessage>(4);
    let reading = async move {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match from_user.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = bytes::Bytes::copy_from_slice(&buffer[..n]);
                    if sender.send(BytesMessage { data }).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let outgoing = tokio_stream::wrappers::ReceiverStream::new(outgoing);
    let mut request = tonic::Request::new(outgoing);
    if let Ok(value) = id.parse() {
        request.metadata_mut().insert(ID_KEY, value);
    }
    let writing = async move {
        let Ok(response) = SshClient::new(channel).forward_agent(request).await else {
            return;
        };
        let mut incoming = response.into_inner();
        while let Some(Ok(message)) = incoming.next().await {
            if to_user.write_all(&message.data).await.is_err() {
                break;
            }
        }
        let _ = to_user.shutdown().await;
    };
    tokio::join!(reading, writing);
}
