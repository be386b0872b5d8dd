//! Constructors for DiffCopy packets.

use nodekit_proto::fsutil::types::packet::PacketType;
use nodekit_proto::fsutil::types::{Packet, Stat};

use crate::SyncError;

fn packet(kind: PacketType, stat: Option<Stat>, id: u32, data: Vec<u8>) -> Packet {
    Packet {
        r#type: kind as i32,
        stat,
        id,
        data: data.into(),
    }
}

/// A STAT packet; `None` marks the end of the listing.
pub(crate) fn stat(stat: Option<Stat>) -> Packet {
    packet(PacketType::PacketStat, stat, 0, Vec::new())
}

pub(crate) fn req(id: u32) -> Packet {
    packet(PacketType::PacketReq, None, id, Vec::new())
}

/// A DATA chunk; empty `data` ends the file.
pub(crate) fn data(id: u32, data: Vec<u8>) -> Packet {
    packet(PacketType::PacketData, None, id, data)
}

pub(crate) fn fin() -> Packet {
    packet(PacketType::PacketFin, None, 0, Vec::new())
}

/// An ERR packet carrying the error's message.
pub(crate) fn err(error: &SyncError) -> Packet {
    packet(
        PacketType::PacketErr,
        None,
        0,
        error.to_string().into_bytes(),
    )
}

/// The packet's type, or a protocol error for unknown values.
pub(crate) fn kind(p: &Packet) -> Result<PacketType, SyncError> {
    PacketType::try_from(p.r#type)
        .map_err(|_| SyncError::Protocol(format!("unknown packet type {}", p.r#type)))
}

/// The message of an ERR packet.
pub(crate) fn message(p: &Packet) -> String {
    String::from_utf8_lossy(&p.data).into_owned()
}
