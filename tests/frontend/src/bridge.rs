//! The frontend's connection to the LLBBridge: HTTP/2 over its own stdin (what the daemon
//! writes) and stdout (what it reads), as BuildKit's frontends connect.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, Stdin, Stdout};
use tonic::transport::{Channel, Endpoint};

/// A channel on stdio; there is one connection, so a reconnect fails.
pub async fn channel() -> anyhow::Result<Channel> {
    let stdio = Mutex::new(Some(Stdio {
        input: tokio::io::stdin(),
        output: tokio::io::stdout(),
    }));
    let connector = tower::service_fn(move |_| {
        let taken = stdio.lock().map(|mut s| s.take()).ok().flatten();
        async move {
            taken
                .map(TokioIo::new)
                .ok_or_else(|| io::Error::other("stdio is already connected"))
        }
    });
    Ok(Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await?)
}

struct Stdio {
    input: Stdin,
    output: Stdout,
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.output).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_shutdown(cx)
    }
}
