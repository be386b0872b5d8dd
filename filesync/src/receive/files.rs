//! Content transfers: REQ packets for wanted files (a bounded number in
//! flight), and DATA written to the file and hashed as it arrives.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use nix::sys::stat::fstat;
use nodekit_proto::fsutil::types::{Packet, Stat};
use tokio::sync::mpsc;

use super::dirs::DirStack;
use super::record::WrittenFile;
use super::safefs::{apply_meta_fd, create_file_at, Meta};
use crate::{packet, wirepath, SyncError};

/// Files requested but not finished at any time: bounds open files, and the files created in
/// one go before the stream is read again. The stream must not wait long: the sender's packets
/// are small HTTP/2 DATA frames, and h2 (0.4.20) closes a connection with ENHANCE_YOUR_CALM
/// ("too_many_data_frames") once small frames left unread cost more framing overhead than half
/// its connection window. 4,096 at once (thousands of creates, seconds on a slow disk) did that,
/// and the client saw its stream closed.
const IN_FLIGHT: usize = 64;
/// The largest write buffer of a file being received. The sender's DATA packets carry 32 KiB;
/// gathering them saves the syscalls of a large file (a small file is written once).
const WRITE_BUFFER: usize = 1 << 20;

/// A file being received.
struct Active {
    stat: Stat,
    file: BufWriter<File>,
    hasher: blake3::Hasher,
    received: u64,
    shown: PathBuf,
}

/// Wanted files waiting for a slot, and those in flight.
#[derive(Default)]
pub(crate) struct Transfers {
    queue: VecDeque<(u32, Stat)>,
    active: HashMap<u32, Active>,
}

impl Transfers {
    /// Queues the content of STAT number `id`.
    pub(crate) fn want(&mut self, id: u32, stat: Stat) {
        self.queue.push_back((id, stat));
    }

    /// Whether nothing is queued or in flight.
    pub(crate) fn idle(&self) -> bool {
        self.queue.is_empty() && self.active.is_empty()
    }

    /// Creates the files of queued entries (empty, private) and requests
    /// their content, while slots are free.
    pub(crate) fn dispatch(
        &mut self,
        dirs: &DirStack,
        out: &mpsc::UnboundedSender<Packet>,
    ) -> Result<(), SyncError> {
        while self.active.len() < IN_FLIGHT {
            let Some((id, stat)) = self.queue.pop_front() else {
                return Ok(());
            };
            let shown = dirs.shown(&stat.path);
            let (dir, name) = wirepath::split_parent(&stat.path);
            let file = create_file_at(dirs.open_dir(dir)?, OsStr::new(name), &shown)?;
            let buffer =
                usize::try_from(stat.size).map_or(WRITE_BUFFER, |size| size.min(WRITE_BUFFER));
            let file = BufWriter::with_capacity(buffer.max(1), file);
            out.send(packet::req(id))
                .map_err(|_| SyncError::Closed("by the sender while requesting files"))?;
            let active = Active {
                stat,
                file,
                hasher: blake3::Hasher::new(),
                received: 0,
                shown,
            };
            self.active.insert(id, active);
        }
        Ok(())
    }

    /// Handles a DATA packet; returns the file once its content is complete
    /// (an empty DATA), with metadata applied.
    pub(crate) fn data(
        &mut self,
        id: u32,
        data: &[u8],
        apply_owner: bool,
    ) -> Result<Option<WrittenFile>, SyncError> {
        let active = self
            .active
            .get_mut(&id)
            .ok_or(SyncError::UnrequestedData { id })?;
        if data.is_empty() {
            let Some(done) = self.active.remove(&id) else {
                return Err(SyncError::UnrequestedData { id });
            };
            return done.finish(apply_owner).map(Some);
        }
        active
            .file
            .write_all(data)
            .map_err(SyncError::io_with("write", &active.shown))?;
        active.hasher.update(data);
        active.received += data.len() as u64;
        Ok(None)
    }
}

impl Active {
    /// Applies owner, mode and times, and takes the file's identity for the
    /// sidecar. The content length is not checked against the stat: like
    /// upstream, a file that changed while being sent is taken as sent.
    fn finish(self, apply_owner: bool) -> Result<WrittenFile, SyncError> {
        // Written out before the times are set, or the last write would change them.
        let file = self
            .file
            .into_inner()
            .map_err(|e| SyncError::io_with("write", &self.shown)(e.into_error()))?;
        apply_meta_fd(
            &file,
            &Meta::from_stat(&self.stat, apply_owner),
            &self.shown,
        )?;
        let disk = fstat(&file).map_err(SyncError::io_with("stat", &self.shown))?;
        Ok(WrittenFile {
            hash: self.hasher.finalize(),
            received: self.received,
            stat: self.stat,
            disk,
        })
    }
}
