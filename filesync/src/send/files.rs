//! File readers answering REQ packets: a few blocking threads stream each
//! requested file as DATA chunks followed by an empty DATA.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;

use crate::packet;
use crate::SyncError;

/// Chunk size of DATA packets (upstream uses 32 KiB buffers).
const CHUNK: usize = 32 * 1024;

/// A requested file.
pub(crate) struct Job {
    pub(crate) id: u32,
    pub(crate) path: PathBuf,
}

/// Starts `workers` reader threads. Jobs go in through the returned sender;
/// read failures come out of the returned receiver. The threads stop when
/// the job sender is dropped or the receiver side of `outgoing` goes away.
pub(crate) fn start(
    outgoing: mpsc::Sender<Packet>,
    workers: usize,
    bytes: Arc<AtomicU64>,
) -> (
    mpsc::UnboundedSender<Job>,
    mpsc::UnboundedReceiver<SyncError>,
) {
    let (job_tx, job_rx) = mpsc::unbounded_channel::<Job>();
    let (err_tx, err_rx) = mpsc::unbounded_channel();
    let jobs = Arc::new(Mutex::new(job_rx));
    for _ in 0..workers {
        let jobs = Arc::clone(&jobs);
        let outgoing = outgoing.clone();
        let errors = err_tx.clone();
        let bytes = Arc::clone(&bytes);
        tokio::task::spawn_blocking(move || worker(&jobs, &outgoing, &errors, &bytes));
    }
    (job_tx, err_rx)
}

fn worker(
    jobs: &Mutex<mpsc::UnboundedReceiver<Job>>,
    outgoing: &mpsc::Sender<Packet>,
    errors: &mpsc::UnboundedSender<SyncError>,
    bytes: &AtomicU64,
) {
    loop {
        // Only the idle thread waiting for a job holds the lock.
        let job = jobs.lock().blocking_recv();
        let Some(job) = job else { return };
        match send_file(&job, outgoing, bytes) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = errors.send(e);
                return;
            }
        }
    }
}

/// Streams one file. `Ok(false)` when the peer is gone.
fn send_file(
    job: &Job,
    outgoing: &mpsc::Sender<Packet>,
    bytes: &AtomicU64,
) -> Result<bool, SyncError> {
    // O_NOFOLLOW: the walk sent a regular file; never read through a symlink
    // that replaced it. O_NONBLOCK: never hang on a FIFO that replaced it.
    let opened = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&job.path);
    let mut file = match opened {
        Ok(f) => f,
        // Removed since the walk: like upstream, it arrives empty.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(outgoing
                .blocking_send(packet::data(job.id, Vec::new()))
                .is_ok())
        }
        Err(e) => return Err(SyncError::io("open", &job.path, e)),
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(SyncError::io("read", &job.path, e)),
        };
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        if outgoing
            .blocking_send(packet::data(job.id, buf[..n].to_vec()))
            .is_err()
        {
            return Ok(false);
        }
    }
    Ok(outgoing
        .blocking_send(packet::data(job.id, Vec::new()))
        .is_ok())
}
