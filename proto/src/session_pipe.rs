//! The session transport both ends share. `Control.Session` is a raw byte pipe carried in
//! `BytesMessage`s (message boundaries mean nothing): the client runs an HTTP/2 gRPC server on
//! its end, the daemon a gRPC client on its own. Each end turns the RPC's incoming message stream
//! and outgoing message stream into one duplex byte connection for its HTTP/2 side.
//!
//! The connection reads straight from the incoming messages (their bytes are shared with the
//! gRPC decoder, not copied) and gathers what its HTTP/2 side writes until that side flushes,
//! then sends it as one message, so a file synced through the session is copied once on its way
//! from one HTTP/2 layer to the other.
//!
//! Sending a flush's worth as one message is also what keeps BuildKit's own clients reading the
//! session correctly: their session connection, when it closes the session while messages are
//! still arriving, drains them by appending its whole receive buffer instead of each message,
//! and hands the stale bytes to its HTTP/2 server, which fails with a PROTOCOL_ERROR. A daemon
//! whose opening (preface, SETTINGS) arrives as one message is read before that drain; sent as
//! several, buildx closing a session early read the later ones as garbage.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;

use crate::moby::buildkit::v1::BytesMessage;

/// Outgoing chunks waiting for the RPC; the peer's HTTP/2 flow control bounds them in bytes.
const OUTGOING_CHUNKS: usize = 64;
/// The most bytes gathered into one message before it is sent without waiting for a flush.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// This end of the session: the HTTP/2 side reads the peer's bytes from it and writes its own.
pub struct SessionPipe {
    incoming: BoxStream<'static, Result<BytesMessage, tonic::Status>>,
    /// The part of the last incoming message not read yet.
    unread: Bytes,
    outgoing: PollSender<Bytes>,
    /// Written since the last flush: the next message.
    pending: BytesMut,
}

/// Wires the peer's `incoming` messages into a byte connection. Returns this end and the stream
/// of messages to send to the peer (it ends once the connection is shut down or dropped).
pub fn byte_pipe<S>(
    incoming: S,
) -> (
    SessionPipe,
    impl Stream<Item = Result<BytesMessage, tonic::Status>> + Send + 'static,
)
where
    S: Stream<Item = Result<BytesMessage, tonic::Status>> + Send + Unpin + 'static,
{
    let (sender, receiver) = mpsc::channel(OUTGOING_CHUNKS);
    let pipe = SessionPipe {
        incoming: incoming.boxed(),
        unread: Bytes::new(),
        outgoing: PollSender::new(sender),
        pending: BytesMut::new(),
    };
    let outgoing = ReceiverStream::new(receiver).map(|data| Ok(BytesMessage { data }));
    (pipe, outgoing)
}

impl AsyncRead for SessionPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.unread.is_empty() {
            match ready!(self.incoming.poll_next_unpin(cx)) {
                Some(Ok(message)) => self.unread = message.data,
                // The peer went away (or sent garbage): EOF tears the HTTP/2 side down.
                Some(Err(_)) | None => return Poll::Ready(Ok(())),
            }
        }
        let n = buf.remaining().min(self.unread.len());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl SessionPipe {
    /// Sends what was written since the last flush as one message.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.outgoing.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(peer_gone()));
        }
        let message = self.pending.split().freeze();
        match self.outgoing.send_item(message) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(peer_gone())),
        }
    }
}

impl AsyncWrite for SessionPipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.len() >= MAX_MESSAGE_BYTES {
            ready!(self.poll_send_pending(cx))?;
        }
        if self.outgoing.is_closed() {
            return Poll::Ready(Err(peer_gone()));
        }
        self.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_pending(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_pending(cx))?;
        self.outgoing.close();
        Poll::Ready(Ok(()))
    }
}

/// The client serves its session services on its end with tonic's server, which asks each
/// connection for its peer's address; a session has none.
impl tonic::transport::server::Connected for SessionPipe {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

fn peer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "session closed by the peer")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn message(data: &'static [u8]) -> Result<BytesMessage, tonic::Status> {
        Ok(BytesMessage {
            data: Bytes::from_static(data),
        })
    }

    #[tokio::test]
    async fn reads_across_message_boundaries_and_ends_with_the_stream() {
        let incoming = futures::stream::iter([message(b"hel"), message(b""), message(b"lo")]);
        let (mut pipe, _outgoing) = byte_pipe(incoming);
        let mut read = String::new();
        pipe.read_to_string(&mut read).await.unwrap();
        assert_eq!(read, "hello");
    }

    #[tokio::test]
    async fn writes_become_messages_until_shutdown() {
        let (mut pipe, outgoing) = byte_pipe(futures::stream::pending().boxed());
        pipe.write_all(b"abc").await.unwrap();
        pipe.write_all(b"de").await.unwrap();
        pipe.shutdown().await.unwrap();
        let sent: Vec<Bytes> = outgoing.map(|m| m.unwrap().data).collect().await;
        assert_eq!(sent.concat(), b"abcde");
    }

    #[tokio::test]
    async fn what_is_written_before_a_flush_goes_as_one_message() {
        let (mut pipe, mut outgoing) = byte_pipe(futures::stream::pending().boxed());
        pipe.write_all(b"preface").await.unwrap();
        pipe.write_all(b"settings").await.unwrap();
        pipe.flush().await.unwrap();
        pipe.write_all(b"ack").await.unwrap();
        pipe.flush().await.unwrap();
        let first = outgoing.next().await.unwrap().unwrap().data;
        assert_eq!(first, Bytes::from_static(b"prefacesettings"));
        let second = outgoing.next().await.unwrap().unwrap().data;
        assert_eq!(second, Bytes::from_static(b"ack"));
    }

    #[tokio::test]
    async fn a_write_after_the_peer_left_fails() {
        let (mut pipe, outgoing) = byte_pipe(futures::stream::pending().boxed());
        drop(outgoing);
        let written = async {
            pipe.write_all(b"x").await?;
            pipe.flush().await
        };
        assert!(written.await.is_err());
    }
}
