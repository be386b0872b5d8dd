//! SSH agent forwarding (`RUN --mount=type=ssh`): a unix socket on a private tmpfs under the
//! local-mount-source-root, bind-mounted into the step; each connection to it is carried to
//! the client's agent over the session (`moby.sshforward.v1.SSH/ForwardAgent`). Nothing of the
//! agent reaches a snapshot or a cache key: the mount's id, target and mode are in the op, the
//! keys stay on the client.

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
/// Bytes read from the step's side of a connection at once.
const CHUNK: usize = 32 << 10;

/// A forwarded agent: its socket's tmpfs and the task serving it, both gone when dropped.
pub struct Forwarded {
    _dir: ViewMount,
    serving: JoinHandle<()>,
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// The SSH mount, or None when the client forwards no such agent and the mount is optional.
pub async fn mount(
    op: &OpContext<'_>,
    mount: &pb::Mount,
) -> Result<Option<(ExtraMount, Forwarded)>, SolveError> {
    let options = mount.ssh_opt.clone().unwrap_or_default();
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
    let mode = if options.mode == 0 {
        DEFAULT_MODE
    } else {
        options.mode & 0o777
    };
    set_owner_and_mode(&socket, options.uid, options.gid, mode)
        .map_err(|e| SolveError::Other(format!("SSH agent socket {}: {e}", socket.display())))?;
    let serving = tokio::spawn(serve(listener, channel, id));
    let extra = ExtraMount {
        destination: mount.dest.clone(),
        source: MountSource::Bind {
            source: socket,
            readonly: false,
        },
    };
    Ok(Some((extra, Forwarded { _dir: dir, serving })))
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

fn set_owner_and_mode(
    path: &std::path::Path,
    uid: u32,
    gid: u32,
    mode: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).map_err(std::io::Error::from)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Accepts the step's connections until the step ends (the task is aborted).
async fn serve(listener: UnixListener, channel: Channel, id: String) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(forward(stream, channel.clone(), id.clone()));
    }
}

/// One connection: the step's bytes to the client's agent and back, until either side ends.
async fn forward(stream: UnixStream, channel: Channel, id: String) {
    let (mut from_step, mut to_step) = stream.into_split();
    let (sender, outgoing) = tokio::sync::mpsc::channel::<BytesMessage>(4);
    let reading = async move {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match from_step.read(&mut buffer).await {
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
            if to_step.write_all(&message.data).await.is_err() {
                break;
            }
        }
        let _ = to_step.shutdown().await;
    };
    tokio::join!(reading, writing);
}
