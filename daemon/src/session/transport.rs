//! The session transport. `Control.Session` is a raw byte pipe carried in `BytesMessage`s
//! (message boundaries mean nothing); the client runs an HTTP/2 gRPC *server* on its end and the
//! daemon runs a gRPC *client* over the pipe. This module turns the RPC's two message streams
//! into one duplex byte stream and dials a tonic `Channel` over it.

use std::sync::Arc;

use parking_lot::Mutex;

use futures::Stream;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

pub use nodekit_proto::session_pipe::{byte_pipe, SessionPipe};

/// A gRPC client channel over the daemon's end of the pipe (h2c, authority `localhost`).
pub async fn dial(pipe: SessionPipe) -> Result<Channel, tonic::transport::Error> {
    let pipe = Arc::new(Mutex::new(Some(pipe)));
    let connector = tower::service_fn(move |_| {
        let pipe = pipe.clone();
        async move {
            // The pipe can be dialled once; a reconnect attempt means the session is over.
            let taken = pipe.lock().take();
            taken.map(TokioIo::new).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, "session closed")
            })
        }
    });
    Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
}

/// Passes `stream` through and calls `on_end` once it ends or is dropped (client gone).
pub fn until_closed<S, T>(
    stream: S,
    on_end: impl FnOnce() + Send + 'static,
) -> impl Stream<Item = T> + Send + 'static
where
    S: Stream<Item = T> + Send + 'static,
{
    struct OnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let guard = OnDrop(Some(on_end));
    let mut stream = Box::pin(stream);
    futures::stream::poll_fn(move |cx| {
        let _keep = &guard;
        stream.as_mut().poll_next(cx)
    })
}
