//! The frontend process's stdio as one byte stream for the bridge: what the bridge writes goes
//! to the process's stdin, what the process writes to stdout comes back to the bridge. Its
//! stderr goes to the daemon's log (as buildkitd sends it to its own stderr), and its last
//! lines are kept for the error should the frontend fail.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::worker::exec::{OutputChunk, OutputStream, ProcessControl, StdinWriter};

/// The pipe's buffer each way.
pub const BUFFER: usize = 256 << 10;

/// How much of the frontend's stderr is kept for its error.
const STDERR_TAIL: usize = 4 << 10;

/// Joins `frontend_end` to the process; the handle yields the end of its stderr once its output
/// has ended.
pub fn connect(
    frontend_end: DuplexStream,
    stdin: StdinWriter,
    output: mpsc::Receiver<OutputChunk>,
    control: ProcessControl,
    frontend: &str,
) -> JoinHandle<String> {
    let (reader, writer) = tokio::io::split(frontend_end);
    tokio::spawn(to_stdin(reader, stdin, control));
    tokio::spawn(from_output(output, writer, frontend.to_string()))
}

async fn to_stdin(
    mut reader: tokio::io::ReadHalf<DuplexStream>,
    mut stdin: StdinWriter,
    control: ProcessControl,
) {
    let mut buffer = vec![0; BUFFER];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if stdin.write(&buffer[..read]).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(stdin);
    let _ = control.close_stdin().await;
}

async fn from_output(
    mut output: mpsc::Receiver<OutputChunk>,
    mut writer: tokio::io::WriteHalf<DuplexStream>,
    frontend: String,
) -> String {
    let mut stderr = StderrTail::default();
    let mut bridge_open = true;
    while let Some(chunk) = output.recv().await {
        match chunk.stream {
            OutputStream::Stdout if bridge_open => {
                // A bridge that has gone leaves the rest to be drained.
                bridge_open = writer.write_all(&chunk.data).await.is_ok();
            }
            OutputStream::Stdout => {}
            OutputStream::Stderr => stderr.push(&frontend, &chunk.data),
        }
    }
    let _ = writer.shutdown().await;
    stderr.finish(&frontend)
}

/// The frontend's stderr: logged a line at a time, its end kept.
#[derive(Default)]
struct StderrTail {
    pending: Vec<u8>,
    kept: String,
}

impl StderrTail {
    fn push(&mut self, frontend: &str, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.keep(frontend, &String::from_utf8_lossy(&line));
        }
    }

    fn keep(&mut self, frontend: &str, line: &str) {
        tracing::info!(frontend, "frontend stderr: {}", line.trim_end());
        self.kept.push_str(line);
        if self.kept.len() > STDERR_TAIL {
            let mut cut = self.kept.len() - STDERR_TAIL;
            while !self.kept.is_char_boundary(cut) {
                cut += 1;
            }
            self.kept.drain(..cut);
        }
    }

    fn finish(mut self, frontend: &str) -> String {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            self.keep(frontend, &rest);
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_tail_keeps_whole_lines_and_its_end() {
        let mut tail = StderrTail::default();
        tail.push("f", b"one\ntw");
        tail.push("f", b"o\nthree");
        assert_eq!(tail.finish("f"), "one\ntwo\nthree");
        let mut long = StderrTail::default();
        for _ in 0..2000 {
            long.push("f", "é-line\n".as_bytes());
        }
        let kept = long.finish("f");
        assert!(kept.len() <= STDERR_TAIL && kept.ends_with("é-line\n"));
    }
}
