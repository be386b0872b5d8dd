//! The sending side of DiffCopy (what `buildctl --local` runs): walk the
//! root, send a STAT per entry, answer each REQ with DATA chunks, and end
//! with FIN once the receiver sends FIN.

mod files;
mod filter;
mod follow;
mod walk;

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;

use crate::packet;
use crate::SyncError;
use filter::Filter;
use walk::WalkEntry;

/// Concurrent file readers (upstream uses 4, so DATA of up to 4 files interleave).
const FILE_WORKERS: usize = 4;
/// STAT entries buffered between the walking thread and the stream.
const WALK_BUFFER: usize = 256;
/// How long a final ERR packet may wait for room in `outgoing`.
const ERR_TIMEOUT: Duration = Duration::from_secs(5);

/// What to send, with fsutil/moby semantics (the session metadata
/// `include-patterns`, `exclude-patterns` and `followpaths`).
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The directory to send (a symlink to a directory is resolved first).
    pub root: PathBuf,
    /// When non-empty, only matching paths (and the directories leading to
    /// them) are sent.
    pub include_patterns: Vec<String>,
    /// Dockerignore patterns: matching paths are not sent; `!` patterns
    /// re-include; `**` spans directories.
    pub exclude_patterns: Vec<String>,
    /// Paths whose symlinks are resolved: the links and their targets (inside
    /// the root) are added to the include patterns.
    pub follow_paths: Vec<String>,
    /// Send uid and gid 0 for every entry, as buildctl does.
    pub reset_owner: bool,
    /// When non-empty, `root` is not sent: each of these directories is
    /// sent as a top-level directory of that name (mode 0755, as upstream's
    /// `SubDirFS`), in name order. No patterns apply.
    pub named_roots: Vec<(String, PathBuf)>,
}

/// What a [`send`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// STAT packets sent (one per entry, without the end marker).
    pub entries_sent: u64,
    /// Files the receiver requested.
    pub files_requested: u64,
    /// Bytes of file content sent in DATA packets.
    pub bytes_sent: u64,
}

/// Sends the tree under `options.root`. `incoming` carries the receiver's
/// packets, `outgoing` takes ours. On failure an ERR packet is sent (unless
/// the error came from the receiver or the stream).
pub async fn send<S, E>(
    options: SendOptions,
    incoming: S,
    outgoing: mpsc::Sender<Packet>,
) -> Result<SendSummary, SyncError>
where
    S: Stream<Item = Result<Packet, E>>,
    E: Display,
{
    let mut incoming = std::pin::pin!(incoming.fuse());
    let (walk_tx, mut walk_rx) = mpsc::channel(WALK_BUFFER);
    tokio::task::spawn_blocking(move || walk_thread(&options, &walk_tx));
    let bytes = Arc::new(AtomicU64::new(0));
    let (jobs, mut read_errors) = files::start(outgoing.clone(), FILE_WORKERS, Arc::clone(&bytes));

    let mut session = Session {
        outgoing: &outgoing,
        jobs,
        files: HashMap::new(),
        next_id: 0,
        walk_done: false,
        summary: SendSummary::default(),
    };
    let result = session
        .run(&mut walk_rx, &mut incoming, &mut read_errors)
        .await;
    if let Err(e) = &result {
        if e.should_notify_peer() {
            let _ = tokio::time::timeout(ERR_TIMEOUT, outgoing.send(packet::err(e))).await;
        }
    }
    result?;
    let mut summary = session.summary;
    summary.bytes_sent = bytes.load(Ordering::Relaxed);
    Ok(summary)
}

/// Messages from the walking thread.
enum WalkEvent {
    Entry(WalkEntry),
    Failed(SyncError),
    Done,
}

fn walk_thread(options: &SendOptions, events: &mpsc::Sender<WalkEvent>) {
    let result = walk_root(options, &mut |entry| {
        events
            .blocking_send(WalkEvent::Entry(entry))
            .map_err(|_| SyncError::Closed("while walking"))
    });
    let _ = events.blocking_send(match result {
        Ok(()) => WalkEvent::Done,
        Err(e) => WalkEvent::Failed(e),
    });
}

fn walk_root(
    options: &SendOptions,
    emit: &mut dyn FnMut(WalkEntry) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    if !options.named_roots.is_empty() {
        return walk_named_roots(options, emit);
    }
    let root = resolve_dir(&options.root)?;
    let filter = Filter::from_options(&root, options)?;
    walk::walk(&root, &filter, options.reset_owner, emit)
}

fn walk_named_roots(
    options: &SendOptions,
    emit: &mut dyn FnMut(WalkEntry) -> Result<(), SyncError>,
) -> Result<(), SyncError> {
    let patterns = [
        &options.include_patterns,
        &options.exclude_patterns,
        &options.follow_paths,
    ];
    if patterns.iter().any(|p| !p.is_empty()) {
        return Err(SyncError::InvalidOptions(
            "patterns do not apply to named roots".into(),
        ));
    }
    let mut roots = Vec::with_capacity(options.named_roots.len());
    for (name, dir) in &options.named_roots {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            let message = format!("{name:?} cannot name a top-level directory");
            return Err(SyncError::InvalidOptions(message));
        }
        roots.push((name.clone(), resolve_dir(dir)?));
    }
    roots.sort();
    if roots.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(SyncError::InvalidOptions(
            "two named roots share a name".into(),
        ));
    }
    let filter = Filter::new(&[], &[])?;
    walk::walk_named(&roots, &filter, options.reset_owner, emit)
}

/// Like upstream, a symlinked root is resolved first; it must be a directory.
fn resolve_dir(dir: &std::path::Path) -> Result<PathBuf, SyncError> {
    let root = std::fs::canonicalize(dir).map_err(SyncError::io_with("resolve", dir))?;
    if !std::fs::metadata(&root)
        .map_err(SyncError::io_with("stat", &root))?
        .is_dir()
    {
        let not_dir = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
        return Err(SyncError::io("send", &root, not_dir));
    }
    Ok(root)
}

struct Session<'a> {
    outgoing: &'a mpsc::Sender<Packet>,
    jobs: mpsc::UnboundedSender<files::Job>,
    /// Regular files sent but not requested yet, by ID.
    files: HashMap<u32, PathBuf>,
    next_id: u32,
    walk_done: bool,
    summary: SendSummary,
}

impl Session<'_> {
    async fn run<S, E>(
        &mut self,
        walk: &mut mpsc::Receiver<WalkEvent>,
        incoming: &mut S,
        read_errors: &mut mpsc::UnboundedReceiver<SyncError>,
    ) -> Result<(), SyncError>
    where
        S: Stream<Item = Result<Packet, E>> + Unpin,
        E: Display,
    {
        loop {
            tokio::select! {
                event = walk.recv(), if !self.walk_done => self.on_walk(event).await?,
                item = incoming.next() => {
                    if self.on_incoming(item)? {
                        return self.put(packet::fin()).await;
                    }
                }
                Some(e) = read_errors.recv() => return Err(e),
            }
        }
    }

    async fn on_walk(&mut self, event: Option<WalkEvent>) -> Result<(), SyncError> {
        match event {
            Some(WalkEvent::Entry(entry)) => {
                let id = self.next_id;
                self.next_id = id.checked_add(1).ok_or_else(|| {
                    SyncError::InvalidOptions("more than 2^32 entries to send".into())
                })?;
                if let Some(source) = entry.source {
                    self.files.insert(id, source);
                }
                self.summary.entries_sent += 1;
                self.put(packet::stat(Some(entry.stat))).await
            }
            Some(WalkEvent::Done) => {
                self.walk_done = true;
                self.put(packet::stat(None)).await
            }
            Some(WalkEvent::Failed(e)) => Err(e),
            None => Err(SyncError::Internal(
                "the walking thread stopped unexpectedly".into(),
            )),
        }
    }

    /// Handles one packet from the receiver; `true` once it sent FIN.
    fn on_incoming<E: Display>(
        &mut self,
        item: Option<Result<Packet, E>>,
    ) -> Result<bool, SyncError> {
        let p = match item {
            None => return Err(SyncError::Closed("by the receiver before FIN")),
            Some(Err(e)) => return Err(SyncError::Transport(e.to_string())),
            Some(Ok(p)) => p,
        };
        match packet::kind(&p)? {
            PacketType::PacketReq => {
                let path = self.files.remove(&p.id).ok_or_else(|| {
                    SyncError::Protocol(format!(
                        "REQ for invalid file id {} (not a regular file, or requested twice)",
                        p.id
                    ))
                })?;
                self.summary.files_requested += 1;
                self.jobs
                    .send(files::Job { id: p.id, path })
                    .map_err(|_| SyncError::Internal("file readers stopped".into()))?;
                Ok(false)
            }
            PacketType::PacketFin => Ok(true),
            PacketType::PacketErr => Err(SyncError::FromReceiver(packet::message(&p))),
            other => Err(SyncError::Protocol(format!(
                "unexpected {} packet from the receiver",
                other.as_str_name()
            ))),
        }
    }

    async fn put(&self, p: Packet) -> Result<(), SyncError> {
        self.outgoing
            .send(p)
            .await
            .map_err(|_| SyncError::Closed("by the receiver while sending"))
    }
}
