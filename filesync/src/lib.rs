//! fsutil DiffCopy, the file-sync protocol of BuildKit sessions
//! (`moby.filesync.v1.FileSync/DiffCopy`): [`send`] walks a local directory
//! and streams it; [`receive`] validates what arrives and writes it into a
//! destination directory incrementally and without ever leaving it.
//!
//! Both sides work on streams of [`nodekit_proto::fsutil::types::Packet`]:
//! incoming packets as a `futures::Stream<Item = Result<Packet, E>>`,
//! outgoing ones through a `tokio::sync::mpsc::Sender<Packet>`, so callers
//! wire them to tonic streams (or, in tests, to each other).
//!
//! Differences from upstream fsutil: extended attributes are neither sent
//! nor applied; device nodes are refused by the receiver (a build context
//! has no use for them) and sockets are not sent; a file whose content
//! length differs from its stat (it changed while being sent) is accepted
//! as received, as upstream does.

mod error;
pub mod headers;
pub mod mode;
mod packet;
mod receive;
mod send;
mod summary;
mod validate;
mod wirepath;

pub use error::SyncError;
pub use receive::{begin, receive, Listing, PendingReceive, ReceiveOptions};
pub use send::{send, SendOptions, SendSummary};
pub use summary::{Entry, EntryKind, ReceiveSummary};
