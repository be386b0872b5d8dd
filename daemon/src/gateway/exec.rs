//! LLBBridge.ExecProcess: one process in a gateway container, driven over a bidi stream. The
//! client's first message is `Init`; nodekitd answers `Started`, then the process's output
//! (`File` on fd 1 and 2), an EOF `File` per output fd, `Exit` and finally `Done`. Meanwhile the
//! client writes stdin (`File` on fd 0), resizes the terminal and sends signals.

use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::frontend::{
    exec_message::Input, DoneMessage, ExecMessage, ExitMessage, FdMessage, InitMessage,
    StartedMessage,
};
use nodekit_proto::pb;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::GatewayBuild;
use crate::config::entitlements::{Entitlement, Entitlements};
use crate::solver::entitlements::how_to_allow;
use crate::worker::exec::{
    OutputChunk, OutputStream, ProcessControl, ProcessRequest, ProcessSpec, StdinWriter, StreamSet,
};

/// Upstream's exit code when the process's status is unknown.
const UNKNOWN_EXIT: u32 = 255;

type Outgoing = mpsc::Sender<Result<ExecMessage, Status>>;

/// Serves one ExecProcess stream; the replies come through the returned receiver.
pub fn exec_process(
    build: Arc<GatewayBuild>,
    incoming: Streaming<ExecMessage>,
) -> mpsc::Receiver<Result<ExecMessage, Status>> {
    let (out, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        if let Err(status) = serve(&build, incoming, &out).await {
            let _ = out.send(Err(status)).await;
        }
    });
    receiver
}

async fn serve(
    build: &GatewayBuild,
    mut incoming: Streaming<ExecMessage>,
    out: &Outgoing,
) -> Result<(), Status> {
    let first = incoming
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("ExecProcess stream ended before Init"))?;
    let pid = first.process_id.clone();
    let Some(Input::Init(init)) = first.input else {
        return Err(Status::invalid_argument(format!(
            "ExecProcess {pid}: the first message must be Init"
        )));
    };
    let mut request = process_request(&init, &build.ctx.entitlements)?;
    let secrets =
        crate::solver::container_secret_env(&build.solver, &build.ctx, init.secretenv.clone())
            .await
            .map_err(crate::api::errors::to_status)?;
    request.process.env.extend(secrets);
    let container = build.containers.get(&init.container_id)?;
    let (sink, output) = mpsc::channel(64);
    let mut process = container.inner.start(request, sink).await.map_err(|e| {
        Status::unknown(format!(
            "starting process {pid} in container {}: {e}",
            init.container_id
        ))
    })?;
    send(out, &pid, Input::Started(StartedMessage {})).await;
    let control = process.control.clone();
    let stdin = process
        .stdin
        .take()
        .map(|w| spawn_stdin(w, control.clone()));
    let mut relay = Relay {
        pid: pid.clone(),
        out: out.clone(),
        control: control.clone(),
        stdin,
    };
    let (exit, output) = relay.run(&mut incoming, output).await;
    // The rest of the output, then EOF on every output fd.
    let drain = drain(output, out, &pid);
    tokio::join!(process.finish(), drain);
    for fd in init.fds.iter().filter(|fd| **fd != 0) {
        let eof = Input::File(FdMessage {
            fd: *fd,
            eof: true,
            data: Vec::new(),
        });
        send(out, &pid, eof).await;
    }
    send(out, &pid, Input::Exit(exit)).await;
    send(out, &pid, Input::Done(DoneMessage {})).await;
    Ok(())
}

/// The process `init` asks for; what nodekitd does not implement is refused by name, and
/// security mode INSECURE needs the build's `security.insecure` entitlement.
fn process_request(init: &InitMessage, granted: &Entitlements) -> Result<ProcessRequest, Status> {
    if let Some(fd) = init.fds.iter().find(|fd| **fd > 2) {
        return Err(Status::unimplemented(format!(
            "ExecProcess fd {fd}: only fds 0, 1 and 2 are supported by nodekitd"
        )));
    }
    let privileged = init.security == pb::SecurityMode::Insecure as i32;
    if privileged && !granted.contains(Entitlement::SecurityInsecure) {
        let missing = Entitlement::SecurityInsecure;
        return Err(Status::permission_denied(format!(
            "ExecProcess security mode INSECURE: {missing} is not allowed; {}",
            how_to_allow(missing)
        )));
    }
    let meta = init
        .meta
        .as_ref()
        .filter(|m| !m.args.is_empty())
        .ok_or_else(|| Status::invalid_argument("ExecProcess Init without args"))?;
    let mut env = meta.env.clone();
    if init.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    Ok(ProcessRequest {
        process: ProcessSpec {
            args: meta.args.clone(),
            env,
            cwd: Some(meta.cwd.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "/".to_string()),
            user: meta.user.clone(),
            extra_hosts: Vec::new(),
        },
        streams: StreamSet {
            stdin: init.fds.contains(&0),
            stdout: init.fds.contains(&1),
            stderr: init.fds.contains(&2),
            tty: init.tty,
        },
        privileged,
    })
}

/// Relays the client's messages to the process and its output to the client until it exits.
struct Relay {
    pid: String,
    out: Outgoing,
    control: ProcessControl,
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

impl Relay {
    async fn run(
        &mut self,
        incoming: &mut Streaming<ExecMessage>,
        mut output: mpsc::Receiver<OutputChunk>,
    ) -> (ExitMessage, mpsc::Receiver<OutputChunk>) {
        let control = self.control.clone();
        let wait = control.wait();
        tokio::pin!(wait);
        let mut reading = true;
        let mut client_gone = false;
        let out = self.out.clone();
        loop {
            tokio::select! {
                waited = &mut wait => return (exit_message(waited), output),
                Some(chunk) = output.recv() => forward(&self.out, &self.pid, chunk).await,
                message = incoming.message(), if reading => {
                    reading = self.handle(message).await;
                }
                // The RPC was cancelled (the client went away): nobody can see or stop the
                // process any more.
                _ = out.closed(), if !client_gone => {
                    client_gone = true;
                    tracing::debug!(pid = self.pid, "ExecProcess client went away; killing");
                    let _ = self.control.signal(nix::libc::SIGKILL as u32).await;
                }
            }
        }
    }

    /// Handles one client message; false once the client has stopped sending.
    async fn handle(&mut self, message: Result<Option<ExecMessage>, Status>) -> bool {
        let input = match message {
            Ok(Some(message)) => message.input,
            Ok(None) => return false,
            Err(status) => {
                tracing::debug!(%status, pid = self.pid, "ExecProcess client went away; killing");
                let _ = self.control.signal(nix::libc::SIGKILL as u32).await;
                return false;
            }
        };
        let result = match input {
            Some(Input::File(file)) if file.fd == 0 => {
                self.stdin_input(file);
                Ok(())
            }
            Some(Input::Resize(size)) => self
                .control
                .resize(size.rows, size.cols)
                .await
                .map_err(|e| e.to_string()),
            Some(Input::Signal(signal)) => match signal_number(&signal.name) {
                Some(number) => self.control.signal(number).await.map_err(|e| e.to_string()),
                None => Err(format!("unknown signal {:?}", signal.name)),
            },
            other => Err(format!("unexpected message {other:?}")),
        };
        if let Err(error) = result {
            tracing::warn!(pid = self.pid, error, "ExecProcess message not handled");
        }
        true
    }

    fn stdin_input(&mut self, file: FdMessage) {
        if let Some(stdin) = &self.stdin {
            if !file.data.is_empty() {
                let _ = stdin.send(file.data);
            }
        }
        if file.eof {
            self.stdin = None; // the writer task closes the process's stdin
        }
    }
}

/// Writes stdin in its own task, so a process not reading it never blocks the relay.
fn spawn_stdin(mut writer: StdinWriter, control: ProcessControl) -> mpsc::UnboundedSender<Vec<u8>> {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(data) = receiver.recv().await {
            if writer.write(&data).await.is_err() {
                break;
            }
        }
        drop(writer);
        let _ = control.close_stdin().await;
    });
    sender
}

fn exit_message(waited: Result<u32, crate::worker::WorkerError>) -> ExitMessage {
    match waited {
        Ok(0) => ExitMessage {
            code: 0,
            error: None,
        },
        Ok(code) => ExitMessage {
            code,
            error: Some(rpc_error(format!("exit code: {code}"))),
        },
        Err(error) => ExitMessage {
            code: UNKNOWN_EXIT,
            error: Some(rpc_error(error.to_string())),
        },
    }
}

fn rpc_error(message: String) -> nodekit_proto::google::rpc::Status {
    nodekit_proto::google::rpc::Status {
        code: tonic::Code::Unknown as i32,
        message,
        details: Vec::new(),
    }
}

/// `HUP`, `SIGHUP` or a number.
fn signal_number(name: &str) -> Option<u32> {
    if let Ok(number) = name.parse::<u32>() {
        return Some(number);
    }
    let name = name.to_ascii_uppercase();
    let full = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32 as u32)
}

async fn forward(out: &Outgoing, pid: &str, chunk: OutputChunk) {
    let fd = match chunk.stream {
        OutputStream::Stdout => 1,
        OutputStream::Stderr => 2,
    };
    let file = Input::File(FdMessage {
        fd,
        eof: false,
        data: chunk.data,
    });
    send(out, pid, file).await;
}

async fn drain(mut output: mpsc::Receiver<OutputChunk>, out: &Outgoing, pid: &str) {
    while let Some(chunk) = output.recv().await {
        forward(out, pid, chunk).await;
    }
}

/// Sends a message (a client that went away just misses it).
async fn send(out: &Outgoing, pid: &str, input: Input) {
    let message = ExecMessage {
        process_id: pid.to_string(),
        input: Some(input),
    };
    let _ = out.send(Ok(message)).await;
}
