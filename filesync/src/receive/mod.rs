//! The receiving side of DiffCopy (the daemon side of a `local://` source):
//! validates every entry, brings `dest` up to date with as few transfers as
//! possible, and never writes outside it.
//!
//! The disk work runs on a blocking thread ([`worker`]); this module only
//! moves packets between the streams and that thread. Reading the incoming
//! stream never waits for the outgoing one (REQ packets go through a
//! forwarding task), so neither side can block the other.

mod dirs;
mod files;
mod finish;
mod record;
mod safefs;
mod state;
mod tree;
mod worker;

use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use futures::{Stream, StreamExt};
use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::summary::ReceiveSummary;
use crate::{packet, SyncError};

/// Incoming packets buffered for the worker thread.
const PACKET_BUFFER: usize = 64;
/// How long the last packets (our FIN, or an ERR) may wait for room in
/// `outgoing`.
const ERR_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to receive.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The directory to fill. Created if missing; it keeps the previous
    /// copy, and anything in it that the sender no longer has is deleted.
    pub dest: PathBuf,
    /// The sidecar recording the last sync's files (stat, inode, hash), so
    /// unchanged files are not transferred again. Must be outside `dest`.
    pub state_file: PathBuf,
    /// Apply the uid/gid of each entry (needs root; [`ReceiveOptions::new`]
    /// enables it when running as root).
    pub apply_owner: bool,
}

impl ReceiveOptions {
    /// Options for `dest` with its sidecar at `state_file`.
    pub fn new(dest: impl Into<PathBuf>, state_file: impl Into<PathBuf>) -> Self {
        ReceiveOptions {
            dest: dest.into(),
            state_file: state_file.into(),
            apply_owner: nix::unistd::geteuid().is_root(),
        }
    }

    fn check(&self) -> Result<(), SyncError> {
        let dest =
            std::path::absolute(&self.dest).map_err(SyncError::io_with("resolve", &self.dest))?;
        let state = std::path::absolute(&self.state_file)
            .map_err(SyncError::io_with("resolve", &self.state_file))?;
        if state.starts_with(&dest) {
            return Err(SyncError::InvalidOptions(format!(
                "the state file {} must be outside the destination {}",
                state.display(),
                dest.display()
            )));
        }
        Ok(())
    }
}

/// Receives a tree into `options.dest`: `incoming` carries the sender's
/// packets, `outgoing` takes ours (REQ, FIN, ERR). Returns once the sender
/// answered our FIN and closed its stream. On failure an ERR packet is sent
/// (unless the error came from the sender or the stream); `dest` may then
/// hold a partial copy, which the next receive completes.
pub async fn receive<S, E>(
    options: ReceiveOptions,
    incoming: S,
    outgoing: mpsc::Sender<Packet>,
) -> Result<ReceiveSummary, SyncError>
where
    S: Stream<Item = Result<Packet, E>>,
    E: Display,
{
    options.check()?;
    let mut incoming = std::pin::pin!(incoming.fuse());
    let (in_tx, in_rx) = mpsc::channel(PACKET_BUFFER);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward(out_rx, outgoing.clone()));
    let mut worker = tokio::task::spawn_blocking(move || worker::run(&options, in_rx, out_tx));
    let result = pump(&mut incoming, in_tx, &mut worker).await;
    match &result {
        // The worker is done, so the forwarder ends once our FIN is out.
        Ok(_) => drop(tokio::time::timeout(ERR_TIMEOUT, forwarder).await),
        Err(e) => {
            forwarder.abort();
            if e.should_notify_peer() {
                let _ = tokio::time::timeout(ERR_TIMEOUT, outgoing.send(packet::err(e))).await;
            }
        }
    }
    result
}

/// Passes our packets to `outgoing` until the worker is done.
async fn forward(mut packets: mpsc::UnboundedReceiver<Packet>, outgoing: mpsc::Sender<Packet>) {
    while let Some(p) = packets.recv().await {
        if outgoing.send(p).await.is_err() {
            return;
        }
    }
}

/// Feeds incoming packets to the worker until it finishes, then reads the
/// stream to its end (the sender closes it after its FIN).
async fn pump<S, E>(
    incoming: &mut S,
    in_tx: mpsc::Sender<Result<Packet, SyncError>>,
    worker: &mut JoinHandle<Result<ReceiveSummary, SyncError>>,
) -> Result<ReceiveSummary, SyncError>
where
    S: Stream<Item = Result<Packet, E>> + Unpin,
    E: Display,
{
    let mut in_tx = Some(in_tx);
    loop {
        tokio::select! {
            joined = &mut *worker => {
                let summary = joined.map_err(|e| SyncError::Internal(format!("receive worker failed: {e}")))??;
                drain(incoming).await;
                return Ok(summary);
            }
            item = incoming.next(), if in_tx.is_some() => {
                let Some(item) = item else {
                    // End of stream: the worker sees its channel close.
                    in_tx = None;
                    continue;
                };
                let item = item.map_err(|e| SyncError::Transport(e.to_string()));
                if let Some(tx) = &in_tx {
                    if tx.send(item).await.is_err() {
                        in_tx = None;
                    }
                }
            }
        }
    }
}

/// Reads the rest of the stream. Once both FINs were exchanged the tree is
/// complete, so a transport error here no longer matters.
async fn drain<S, E>(incoming: &mut S)
where
    S: Stream<Item = Result<Packet, E>> + Unpin,
{
    while let Some(Ok(_)) = incoming.next().await {}
}
