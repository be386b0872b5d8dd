//! The receiving side of DiffCopy (the daemon side of a `local://` source):
//! validates every entry, brings `dest` up to date with as few transfers as
//! possible, and never writes outside it.
//!
//! The disk work runs on a blocking thread ([`worker`]); this module only
//! moves packets between the streams and that thread. Reading the incoming
//! stream never waits for the outgoing one (REQ packets go through a
//! forwarding task), so neither side can block the other.
//!
//! A receive can begin before there is a destination ([`begin`]): when the
//! caller vouches for what `dest` holds and the listing turns out to be the
//! one that produced it, the receive ends there ([`listing`]).

mod dirs;
mod files;
mod finish;
mod listing;
mod record;
mod safefs;
mod state;
mod tree;
mod worker;

use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::summary::ReceiveSummary;
use crate::{packet, SyncError};
use listing::{entry_hash, ListingRecord};

/// Incoming packets buffered for the worker thread.
const PACKET_BUFFER: usize = 64;
/// How long the last packets (our FIN, or an ERR) may wait for room in
/// `outgoing`.
const ERR_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to receive.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// The directory to fill. Created if missing; it keeps the previous
    /// copy, and anything in it that the sender no longer has is deleted
    /// (unless `keep_unlisted`).
    pub dest: PathBuf,
    /// The sidecar recording the last sync's files (stat, inode, hash), so
    /// unchanged files are not transferred again. Must be outside `dest`.
    pub state_file: PathBuf,
    /// Apply the uid/gid of each entry (needs root; [`ReceiveOptions::new`]
    /// enables it when running as root).
    pub apply_owner: bool,
    /// The tree digest of what `dest` holds, when the caller knows it is
    /// exactly the result of an earlier receive with this state file.
    pub trusted_base: Option<String>,
    /// Keep what `dest` holds that the sender does not list (upstream's
    /// `Merge`, as a local exporter's client receives): sent entries still
    /// replace what is at their path.
    pub keep_unlisted: bool,
}

impl ReceiveOptions {
    /// Options for `dest` with its sidecar at `state_file`.
    pub fn new(dest: impl Into<PathBuf>, state_file: impl Into<PathBuf>) -> Self {
        ReceiveOptions {
            dest: dest.into(),
            state_file: state_file.into(),
            apply_owner: nix::unistd::geteuid().is_root(),
            trusted_base: None,
            keep_unlisted: false,
        }
    }

    /// Declares that `dest` holds the tree `digest` ([`ReceiveSummary::digest`])
    /// that an earlier receive with this state file produced.
    pub fn trusting(mut self, digest: impl Into<String>) -> Self {
        self.trusted_base = Some(digest.into());
        self
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

/// How a receive began.
pub enum Listing {
    /// The listing is the one that produced the trusted base: nothing was
    /// touched, both FINs were exchanged, and the summary's `entries` and
    /// `transferred` are empty (the caller has the base's).
    Unchanged(ReceiveSummary),
    /// Work to do: continue with [`PendingReceive::receive_into`].
    Changed(PendingReceive),
}

/// A receive that has read part of the stream and needs its destination.
pub struct PendingReceive {
    options: ReceiveOptions,
    held: Vec<Packet>,
    incoming: BoxStream<'static, Result<Packet, SyncError>>,
    outgoing: mpsc::Sender<Packet>,
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
    S: Stream<Item = Result<Packet, E>> + Send + 'static,
    E: Display,
{
    let dest = options.dest.clone();
    match begin(options, incoming, outgoing).await? {
        Listing::Unchanged(summary) => Ok(summary),
        Listing::Changed(pending) => pending.receive_into(dest).await,
    }
}

/// Begins a receive without touching `options.dest`: with a trusted base
/// whose listing comes again, the receive ends here.
pub async fn begin<S, E>(
    options: ReceiveOptions,
    incoming: S,
    outgoing: mpsc::Sender<Packet>,
) -> Result<Listing, SyncError>
where
    S: Stream<Item = Result<Packet, E>> + Send + 'static,
    E: Display,
{
    let mut incoming = incoming
        .map(|item| item.map_err(|e| SyncError::Transport(e.to_string())))
        .boxed();
    let expected = options
        .trusted_base
        .as_ref()
        .and_then(|tree| ListingRecord::load(&options.state_file).filter(|r| &r.tree == tree));
    let mut held = Vec::new();
    if let Some(expected) = expected {
        if hold_listing(&mut incoming, &mut held, &expected.entries).await? {
            let summary = end_unchanged(&held, &mut incoming, &outgoing, expected.tree).await?;
            return Ok(Listing::Unchanged(summary));
        }
    }
    Ok(Listing::Changed(PendingReceive {
        options,
        held,
        incoming,
        outgoing,
    }))
}

/// Holds the sender's packets back while its listing matches `expected`, entry by entry;
/// returns whether the whole listing did. The first difference (or any other packet, or the
/// end of the stream) stops it: what was held is then replayed by the ordinary receive.
async fn hold_listing(
    incoming: &mut BoxStream<'static, Result<Packet, SyncError>>,
    held: &mut Vec<Packet>,
    expected: &[[u8; 32]],
) -> Result<bool, SyncError> {
    let mut matched = 0;
    while let Some(item) = incoming.next().await {
        let p = item?;
        let is_stat = p.r#type == PacketType::PacketStat as i32;
        let verdict = match (&p.stat, is_stat) {
            (Some(stat), true) => {
                let same = expected.get(matched) == Some(&entry_hash(stat));
                matched += 1;
                (!same).then_some(false)
            }
            (None, true) => Some(matched == expected.len()),
            (_, false) => Some(false),
        };
        held.push(p);
        if let Some(unchanged) = verdict {
            return Ok(unchanged);
        }
    }
    Ok(false)
}

/// Ends an unchanged receive: our FIN, the sender's FIN, the end of its stream.
async fn end_unchanged(
    held: &[Packet],
    incoming: &mut BoxStream<'static, Result<Packet, SyncError>>,
    outgoing: &mpsc::Sender<Packet>,
    tree: String,
) -> Result<ReceiveSummary, SyncError> {
    outgoing
        .send(packet::fin())
        .await
        .map_err(|_| SyncError::Closed("by the sender before FIN"))?;
    let answer = incoming
        .next()
        .await
        .ok_or(SyncError::Closed("by the sender before its FIN"))??;
    match packet::kind(&answer)? {
        PacketType::PacketFin => {}
        PacketType::PacketErr => return Err(SyncError::FromSender(packet::message(&answer))),
        other => {
            return Err(SyncError::Protocol(format!(
                "{} packet from the sender after the transfer finished",
                other.as_str_name()
            )))
        }
    }
    drain(incoming).await;
    let files = held
        .iter()
        .filter_map(|p| p.stat.as_ref())
        .filter(|s| crate::mode::is_regular(s.mode) && s.linkname.is_empty());
    let (count, bytes) = files.fold((0u64, 0u64), |(n, b), s| {
        (n + 1, b + u64::try_from(s.size).unwrap_or(0))
    });
    Ok(ReceiveSummary {
        digest: tree,
        files_reused: count,
        bytes_reused: bytes,
        unchanged: true,
        ..Default::default()
    })
}

impl PendingReceive {
    /// Receives the rest into `dest` (created if missing; it should hold the
    /// trusted base, if one was given).
    pub async fn receive_into(
        mut self,
        dest: impl Into<PathBuf>,
    ) -> Result<ReceiveSummary, SyncError> {
        self.options.dest = dest.into();
        let held = futures::stream::iter(self.held.into_iter().map(Ok));
        receive_all(self.options, held.chain(self.incoming), self.outgoing).await
    }
}

/// The receive proper, from the first packet on.
async fn receive_all<S>(
    options: ReceiveOptions,
    incoming: S,
    outgoing: mpsc::Sender<Packet>,
) -> Result<ReceiveSummary, SyncError>
where
    S: Stream<Item = Result<Packet, SyncError>>,
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
async fn pump<S>(
    incoming: &mut S,
    in_tx: mpsc::Sender<Result<Packet, SyncError>>,
    worker: &mut JoinHandle<Result<ReceiveSummary, SyncError>>,
) -> Result<ReceiveSummary, SyncError>
where
    S: Stream<Item = Result<Packet, SyncError>> + Unpin,
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
