//! The session transport both ends share. `Control.Session` is a raw byte pipe carried in
//! `BytesMessage`s (message boundaries mean nothing): the client runs an HTTP/2 gRPC server on
//! its end, the daemon a gRPC client on its own. Each end turns the RPC's incoming message stream
//! and outgoing message stream into one duplex byte stream for its HTTP/2 side.

use futures::{Stream, StreamExt};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_util::io::ReaderStream;

use crate::moby::buildkit::v1::BytesMessage;

/// Pipe buffer per direction; HTTP/2 flow control keeps usage below it.
const PIPE_BUFFER: usize = 1 << 20;

/// Wires the peer's `incoming` messages into a byte pipe. Returns this end of the pipe and the
/// stream of messages to send to the peer.
pub fn byte_pipe<S>(
    incoming: S,
) -> (
    DuplexStream,
    impl Stream<Item = Result<BytesMessage, tonic::Status>> + Send + 'static,
)
where
    S: Stream<Item = Result<BytesMessage, tonic::Status>> + Send + Unpin + 'static,
{
    let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
    let (from_peer, mut to_this_end) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let mut incoming = incoming;
        while let Some(Ok(message)) = incoming.next().await {
            if to_this_end.write_all(&message.data).await.is_err() {
                break;
            }
        }
        // The peer went away (or sent garbage): EOF on this side tears the HTTP/2 side down.
        let _ = to_this_end.shutdown().await;
    });
    let outgoing = ReaderStream::new(from_peer).map(|chunk| {
        chunk
            .map(|bytes| BytesMessage {
                data: bytes.to_vec(),
            })
            .map_err(|e| tonic::Status::internal(format!("session pipe: {e}")))
    });
    (ours, outgoing)
}
