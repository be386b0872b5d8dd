//! Step stdout/stderr through FIFOs that the containerd shim writes and nodekit reads.
//!
//! A FIFO read end sees EOF while no writer is open, so nodekit holds a writer of its own until
//! the task has started (the shim then has its own); EOF afterwards means the process is done.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::run::{OutputChunk, OutputStream};
use crate::error::{WorkerError, WorkerResult};

pub struct Stdio {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    keepalive: Vec<pipe::Sender>,
    copiers: Vec<JoinHandle<()>>,
}

impl Stdio {
    pub fn open(dir: &Path, sink: Option<mpsc::Sender<OutputChunk>>) -> WorkerResult<Stdio> {
        Stdio::open_some(dir, "", [true, true], sink)
    }

    /// FIFOs `PREFIXstdout` and `PREFIXstderr` in `dir`, only those `wanted`; a path of a
    /// stream not wanted is empty (containerd gives the process /dev/null).
    pub fn open_some(
        dir: &Path,
        prefix: &str,
        wanted: [bool; 2],
        sink: Option<mpsc::Sender<OutputChunk>>,
    ) -> WorkerResult<Stdio> {
        let mut stdio = Stdio {
            stdout: PathBuf::new(),
            stderr: PathBuf::new(),
            keepalive: Vec::new(),
            copiers: Vec::new(),
        };
        for (wanted, stream) in wanted
            .into_iter()
            .zip([OutputStream::Stdout, OutputStream::Stderr])
        {
            if !wanted {
                continue;
            }
            let path = match stream {
                OutputStream::Stdout => dir.join(format!("{prefix}stdout")),
                OutputStream::Stderr => dir.join(format!("{prefix}stderr")),
            };
            let fail =
                |e: std::io::Error| WorkerError::io(format!("opening FIFO {}", path.display()), e);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|errno| fail(errno.into()))?;
            let reader = pipe::OpenOptions::new()
                .open_receiver(&path)
                .map_err(fail)?;
            stdio
                .keepalive
                .push(pipe::OpenOptions::new().open_sender(&path).map_err(fail)?);
            stdio
                .copiers
                .push(tokio::spawn(copy_out(reader, stream, sink.clone())));
            match stream {
                OutputStream::Stdout => stdio.stdout = path,
                OutputStream::Stderr => stdio.stderr = path,
            }
        }
        Ok(stdio)
    }

    /// Drops nodekit's own writers: from now on EOF follows the shim closing its end.
    pub fn release_writers(&mut self) {
        self.keepalive.clear();
    }

    /// Waits for the output to be read to its end (bounded: a daemonised child could keep a
    /// FIFO open forever).
    pub async fn finish(mut self) {
        self.release_writers();
        for copier in self.copiers.drain(..) {
            let abort = copier.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), copier)
                .await
                .is_err()
            {
                abort.abort();
                tracing::warn!("step output still open 5 s after exit; stopped reading");
            }
        }
    }
}

async fn copy_out(
    mut reader: pipe::Receiver,
    stream: OutputStream,
    sink: Option<mpsc::Sender<OutputChunk>>,
) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) => return,
            Ok(n) => {
                if let Some(sink) = &sink {
                    let chunk = OutputChunk {
                        stream,
                        data: buffer[..n].to_vec(),
                    };
                    // A receiver that went away just stops caring about output.
                    let _ = sink.send(chunk).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading step output failed");
                return;
            }
        }
    }
}
