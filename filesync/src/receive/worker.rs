//! The receiving state machine, run on a blocking thread: it consumes
//! packets in arrival order, touches the disk, and queues packets for the
//! sender (through an unbounded channel, so it never waits on the peer).

use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::Packet;
use tokio::sync::mpsc;

use super::dirs::DirStack;
use super::files::Transfers;
use super::finish::finish;
use super::listing::{entry_hash, ListingRecord};
use super::record::Record;
use super::state::StateRecord;
use super::tree::Tree;
use super::ReceiveOptions;
use crate::summary::ReceiveSummary;
use crate::validate::Validator;
use crate::{packet, SyncError};

/// Packets from the stream, or the stream's failure.
pub(crate) type Incoming = mpsc::Receiver<Result<Packet, SyncError>>;

struct Worker {
    tree: Tree,
    validator: Validator,
    transfers: Transfers,
    out: mpsc::UnboundedSender<Packet>,
    /// ID of the next STAT (its index in the listing).
    next_id: u32,
    /// Every STAT entry's hash, for the next receive's fast path.
    listing: Vec<[u8; 32]>,
    listing_done: bool,
}

/// Receives into `options.dest` until the sender answers our FIN.
pub(crate) fn run(
    options: &ReceiveOptions,
    mut incoming: Incoming,
    out: mpsc::UnboundedSender<Packet>,
) -> Result<ReceiveSummary, SyncError> {
    let mut worker = Worker {
        tree: Tree {
            dirs: DirStack::open(&options.dest, options.keep_unlisted)?,
            record: Record::new(StateRecord::load(&options.state_file)),
            apply_owner: options.apply_owner,
        },
        validator: Validator::default(),
        transfers: Transfers::default(),
        out,
        next_id: 0,
        listing: Vec::new(),
        listing_done: false,
    };
    while !(worker.listing_done && worker.transfers.idle()) {
        let p = next(&mut incoming)?;
        worker.handle(p)?;
    }
    let summary = finish(worker.tree, &options.state_file)?;
    let record = ListingRecord {
        tree: summary.digest.clone(),
        entries: std::mem::take(&mut worker.listing),
    };
    record.save(&options.state_file)?;
    worker
        .out
        .send(packet::fin())
        .map_err(|_| SyncError::Closed("by the sender before FIN"))?;
    await_fin(&mut incoming)?;
    Ok(summary)
}

fn next(incoming: &mut Incoming) -> Result<Packet, SyncError> {
    incoming.blocking_recv().ok_or(SyncError::Closed(
        "by the sender before the transfer finished",
    ))?
}

/// After our FIN, the sender's FIN is the only acceptable packet.
fn await_fin(incoming: &mut Incoming) -> Result<(), SyncError> {
    let p = next(incoming)?;
    match packet::kind(&p)? {
        PacketType::PacketFin => Ok(()),
        PacketType::PacketErr => Err(SyncError::FromSender(packet::message(&p))),
        other => Err(SyncError::Protocol(format!(
            "{} packet from the sender after the transfer finished",
            other.as_str_name()
        ))),
    }
}

impl Worker {
    fn handle(&mut self, p: Packet) -> Result<(), SyncError> {
        match packet::kind(&p)? {
            PacketType::PacketStat => self.on_stat(p),
            PacketType::PacketData => self.on_data(&p),
            PacketType::PacketErr => Err(SyncError::FromSender(packet::message(&p))),
            PacketType::PacketFin => Err(SyncError::Protocol(
                "FIN from the sender before the transfer finished".into(),
            )),
            PacketType::PacketReq => Err(SyncError::Protocol("REQ packet from the sender".into())),
        }
    }

    fn on_stat(&mut self, p: Packet) -> Result<(), SyncError> {
        if self.listing_done {
            return Err(SyncError::Protocol(
                "STAT after the end of the listing".into(),
            ));
        }
        let Some(stat) = p.stat else {
            self.listing_done = true;
            return self.tree.dirs.close_all(&mut self.tree.record.deleted);
        };
        self.listing.push(entry_hash(&stat));
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or_else(|| SyncError::Protocol("more than 2^32 entries".into()))?;
        let kind = self.validator.check(&stat)?;
        if self.tree.apply(&stat, kind)? {
            self.transfers.want(id, stat);
            self.transfers.dispatch(&self.tree.dirs, &self.out)?;
        }
        Ok(())
    }

    fn on_data(&mut self, p: &Packet) -> Result<(), SyncError> {
        if let Some(written) = self.transfers.data(p.id, &p.data, self.tree.apply_owner)? {
            self.tree.record.file_written(written);
            self.transfers.dispatch(&self.tree.dirs, &self.out)?;
        }
        Ok(())
    }
}
