//! The worker's gRPC channel to containerd: tonic's channel, with every failed call counted by
//! the containerd service it went to (`nodekit_containerd_errors_total{service=...}`). Every call
//! of the worker goes through it, so the count needs nothing at the call sites.
//!
//! A call fails when it gets no answer (the connection broke: the transport's error, or the
//! answer's stream breaking) or an answer with a gRPC status other than OK. NotFound and
//! AlreadyExists are not counted: the worker asks with them as ordinary answers ("is this image,
//! blob or snapshot here?", "write this unless it exists"), and the few call sites that make a
//! NotFound a build error report it in the build's own error. A call the worker gives up (a
//! cancelled build drops it) has no answer and is not counted either.
//!
//! A call that gets no answer because the connection is gone (containerd stopped, restarted
//! or not there) fails with an Unavailable status that says so and names the socket, instead
//! of the transport's bare words ("transport error", "broken pipe"): that status is what a
//! build's error shows. tonic's channel connects again by itself on the next call.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap};
use tonic::codegen::{Bytes, Service};
use tonic::transport::Channel;

use crate::stats::WorkerStats;

/// A channel to containerd that counts failed calls in [`WorkerStats`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ContainerdChannel {
    inner: Channel,
    stats: Arc<WorkerStats>,
    /// Where containerd listens, for the errors of a lost connection.
    socket: Arc<PathBuf>,
}

impl ContainerdChannel {
    pub(crate) fn new(inner: Channel, stats: Arc<WorkerStats>, socket: &Path) -> Self {
        ContainerdChannel {
            inner,
            stats,
            socket: Arc::new(socket.to_path_buf()),
        }
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, tonic::Status>> + Send>>;

impl Service<http::Request<Body>> for ContainerdChannel {
    type Response = http::Response<Body>;
    // tonic takes a Status from the channel as the call's own: its code and message stay.
    type Error = tonic::Status;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let socket = &self.socket;
        self.inner
            .poll_ready(cx)
            .map_err(|error| unreachable(socket, &error))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = service_of(request.uri().path());
        let stats = self.stats.clone();
        let socket = self.socket.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = match call.await {
                Ok(response) => response,
                Err(error) => {
                    stats.containerd_error(&service);
                    return Err(unreachable(&socket, &error));
                }
            };
            // A failure without a message ("trailers only", as containerd answers a unary call
            // that failed) has its status in the headers; any other in the trailers.
            if let Some(failed) = failure(response.headers()) {
                if failed {
                    stats.containerd_error(&service);
                }
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Watched {
                    inner: body,
                    watch: Some((service, stats)),
                    socket,
                })
            }))
        })
    }
}

/// The status of a call that got no answer from containerd at `socket`: it could not connect,
/// or the connection broke while the call ran (containerd stopped or restarted).
fn unreachable(socket: &Path, error: &tonic::transport::Error) -> tonic::Status {
    no_answer(socket, &crate::connection::error_chain(error))
}

/// As [`unreachable`], for an answer that broke off with `status`.
fn lost(socket: &Path, status: &tonic::Status) -> tonic::Status {
    no_answer(socket, status.message())
}

fn no_answer(socket: &Path, reason: &str) -> tonic::Status {
    let reason = reason.trim_start_matches("transport error: ");
    tonic::Status::unavailable(format!(
        "containerd at {} did not answer (is it running, or was it restarted?): {reason}",
        socket.display()
    ))
}

/// A response body whose trailers (or breaking off) count a failed call once.
struct Watched {
    inner: Body,
    /// The service and where to count; taken once counted.
    watch: Option<(String, Arc<WorkerStats>)>,
    socket: Arc<PathBuf>,
}

impl Watched {
    fn count(&mut self) {
        if let Some((service, stats)) = self.watch.take() {
            stats.containerd_error(&service);
        }
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    match failure(trailers) {
                        Some(true) => self.count(),
                        _ => self.watch = None,
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let lost = lost(&self.socket, status);
                self.count();
                return Poll::Ready(Some(Err(lost)));
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `Some(true)` when `headers` carry a gRPC status that counts as a failure, `Some(false)` for
/// one that does not, `None` when they carry none.
fn failure(headers: &HeaderMap) -> Option<bool> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(counts_as_failure(tonic::Code::from_i32(code)))
}

fn counts_as_failure(code: tonic::Code) -> bool {
    !matches!(
        code,
        tonic::Code::Ok | tonic::Code::NotFound | tonic::Code::AlreadyExists
    )
}

/// The containerd service of a gRPC path: `/containerd.services.images.v1.Images/Get` is
/// `images`; another service is named by the last part of its name, in lower case.
fn service_of(path: &str) -> String {
    let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if let Some(rest) = service.strip_prefix("containerd.services.") {
        if let Some(name) = rest.split('.').next().filter(|n| !n.is_empty()) {
            return name.to_string();
        }
    }
    match service.rsplit('.').next() {
        Some(name) if !name.is_empty() => name.to_ascii_lowercase(),
        _ => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_named_by_their_containerd_package() {
        for (path, service) in [
            ("/containerd.services.images.v1.Images/Get", "images"),
            ("/containerd.services.content.v1.Content/Write", "content"),
            (
                "/containerd.services.snapshots.v1.Snapshots/Prepare",
                "snapshots",
            ),
            ("/containerd.services.tasks.v1.Tasks/Wait", "tasks"),
            ("/grpc.health.v1.Health/Check", "health"),
            ("", "unknown"),
        ] {
            assert_eq!(service_of(path), service, "{path}");
        }
    }

    #[test]
    fn expected_answers_are_not_failures() {
        let status = |code: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-status", code.parse().unwrap());
            failure(&headers)
        };
        assert_eq!(status("0"), Some(false));
        assert_eq!(status("5"), Some(false), "NotFound");
        assert_eq!(status("6"), Some(false), "AlreadyExists");
        assert_eq!(status("14"), Some(true), "Unavailable");
        assert_eq!(status("13"), Some(true), "Internal");
        assert_eq!(failure(&HeaderMap::new()), None);
    }
}
