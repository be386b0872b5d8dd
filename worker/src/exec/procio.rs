//! The stdio of an interactive process: a stdin FIFO nodekit writes, and output FIFOs read as
//! [`Stdio`](super::stdio::Stdio) reads a step's (a terminal has stdout only).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::run::{OutputChunk, OutputStream};
use super::stdio::Stdio;
use crate::error::{WorkerError, WorkerResult};

/// Which streams a process has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSet {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// One terminal for all of them (its output comes as stdout).
    pub tty: bool,
}

/// The FIFO paths handed to containerd ("" for a stream the process does not have) and the
/// ends nodekit keeps.
pub struct ProcessIo {
    pub stdin_path: String,
    pub stdout_path: String,
    pub stderr_path: String,
    pub stdin: Option<StdinWriter>,
    pub output: Stdio,
}

/// The writing end of a process's stdin; dropping it is the process's EOF.
pub struct StdinWriter {
    sender: pipe::Sender,
}

impl StdinWriter {
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.sender.write_all(data).await
    }
}

impl ProcessIo {
    /// FIFOs named `NAME-stdin`, ... in `dir`; output goes to `sink`.
    pub fn open(
        dir: &Path,
        name: &str,
        streams: StreamSet,
        sink: mpsc::Sender<OutputChunk>,
    ) -> WorkerResult<ProcessIo> {
        // Both output FIFOs always: the shim refuses an exec'd process without them. Output of
        // a stream the client did not ask for is dropped.
        let wanted = [
            streams.stdout || streams.tty,
            streams.stderr && !streams.tty,
        ];
        let sink = OutputFilter { wanted, sink };
        let output = Stdio::open_some(dir, &format!("{name}-"), [true, true], Some(sink.spawn()))?;
        let path_of = |p: &PathBuf| p.to_string_lossy().into_owned();
        let (stdin_path, stdin) = if streams.stdin {
            let path = dir.join(format!("{name}-stdin"));
            let writer = open_stdin(&path)?;
            (path.to_string_lossy().into_owned(), Some(writer))
        } else {
            (String::new(), None)
        };
        Ok(ProcessIo {
            stdin_path,
            stdout_path: path_of(&output.stdout),
            stderr_path: path_of(&output.stderr),
            stdin,
            output,
        })
    }
}

/// Forwards only the output streams wanted.
struct OutputFilter {
    wanted: [bool; 2],
    sink: mpsc::Sender<OutputChunk>,
}

impl OutputFilter {
    fn spawn(self) -> mpsc::Sender<OutputChunk> {
        let (sender, mut receiver) = mpsc::channel::<OutputChunk>(16);
        tokio::spawn(async move {
            while let Some(chunk) = receiver.recv().await {
                let index = match chunk.stream {
                    OutputStream::Stdout => 0,
                    OutputStream::Stderr => 1,
                };
                if self.wanted[index] && self.sink.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        sender
    }
}

fn open_stdin(path: &Path) -> WorkerResult<StdinWriter> {
    let fail = |e: std::io::Error| WorkerError::io(format!("opening FIFO {}", path.display()), e);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|errno| fail(errno.into()))?;
    // Read-write: opening a FIFO's write end alone fails until the shim has opened it to read.
    let sender = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(path)
        .map_err(fail)?;
    Ok(StdinWriter { sender })
}
