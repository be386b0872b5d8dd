//! `moby.filesync.v1.FileSend` on the client's side: the daemon sends an exporter's output,
//! the exporter's index in `buildkit-attachable-exporter-id`. One method carries two kinds of
//! message, as upstream's does: a file output (`oci`, `docker`, `tar`) arrives as a stream of
//! `BytesMessage`s written to its file (`-`: standard output) as they come; a directory output
//! (`local`) is an fsutil DiffCopy with the roles reversed (the daemon sends, we receive
//! `Packet`s into the directory). So the service is served by hand with a codec that hands
//! over each message's bytes, decoded once the exporter's kind is known.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use futures::{Stream, StreamExt};
use nodekit_proto::fsutil::types::Packet;
use nodekit_proto::moby::filesync::v1::BytesMessage;
use nodekit_proto::MAX_MESSAGE;
use prost::Message;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

/// The method the session advertises.
pub const METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";

/// Where one exporter's output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A file (`-`: standard output).
    File(PathBuf),
    /// A directory the exporter's files are written into. What it holds already stays
    /// (buildctl's default `mode=copy`) unless `replace` (`mode=delete`): then what the
    /// result does not have is deleted.
    Directory { dest: PathBuf, replace: bool },
}

/// The FileSend service over the outputs of one build, by exporter index.
#[derive(Clone)]
pub struct Outputs {
    outputs: Arc<BTreeMap<usize, Output>>,
}

impl Outputs {
    pub fn new(outputs: BTreeMap<usize, Output>) -> Outputs {
        Outputs {
            outputs: Arc::new(outputs),
        }
    }

    fn output_of<T>(&self, request: &Request<T>) -> Result<Output, Status> {
        let index: usize = request
            .metadata()
            .get(EXPORTER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Status::invalid_argument(format!("request lacks {EXPORTER_ID}")))?;
        self.outputs
            .get(&index)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no output for exporter {index}")))
    }
}

type Outgoing = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// One DiffCopy call.
struct DiffCopy(Outputs);

impl StreamingService<Bytes> for DiffCopy {
    type Response = Bytes;
    type ResponseStream = Outgoing;
    type Future = futures::future::BoxFuture<'static, Result<Response<Outgoing>, Status>>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let outputs = self.0.clone();
        Box::pin(async move {
            match outputs.output_of(&request)? {
                Output::File(path) => {
                    write_file(&path, request.into_inner()).await?;
                    let none: Outgoing = Box::pin(futures::stream::empty());
                    Ok(Response::new(none))
                }
                Output::Directory { dest, replace } => {
                    // buildctl (grpc-go) sends the response headers with its first packet,
                    // after the daemon's first: answering as late keeps a daemon that waits
                    // for headers before sending from passing our tests and hanging with it.
                    let mut incoming = request.into_inner();
                    let first = incoming.message().await?;
                    let incoming = futures::stream::iter(first.map(Ok)).chain(incoming);
                    Ok(Response::new(receive_directory(dest, replace, incoming)))
                }
            }
        })
    }
}

/// Writes the file as its messages arrive.
async fn write_file(path: &Path, mut incoming: Streaming<Bytes>) -> Result<(), Status> {
    let mut sink: Box<dyn AsyncWrite + Unpin + Send> = if path == Path::new("-") {
        Box::new(tokio::io::stdout())
    } else {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Status::internal(format!("creating {}: {e}", path.display())))?;
        Box::new(tokio::io::BufWriter::new(file))
    };
    let failed = |e: std::io::Error| Status::internal(format!("writing {}: {e}", path.display()));
    while let Some(raw) = incoming.message().await? {
        let message = BytesMessage::decode(raw)
            .map_err(|e| Status::invalid_argument(format!("a file output message: {e}")))?;
        sink.write_all(&message.data).await.map_err(failed)?;
    }
    sink.flush().await.map_err(failed)
}

/// Receives the daemon's tree into `dest`; our packets (REQ, FIN, ERR) are the response
/// stream, which ends with the receive (an error as its status).
fn receive_directory<S>(dest: PathBuf, replace: bool, incoming: S) -> Outgoing
where
    S: Stream<Item = Result<Bytes, Status>> + Send + 'static,
{
    let packets = incoming.map(|raw| {
        let raw = raw?;
        Packet::decode(raw).map_err(|e| Status::invalid_argument(format!("a packet: {e}")))
    });
    let (to_daemon, ours) = mpsc::channel::<Packet>(64);
    let (ended_tx, ended) = tokio::sync::oneshot::channel::<Result<(), Status>>();
    tokio::spawn(async move {
        let received = receive_into(&dest, replace, packets, to_daemon).await;
        let _ = ended_tx.send(received);
    });
    let replies = ReceiverStream::new(ours).map(|p| Ok(Bytes::from(p.encode_to_vec())));
    // After our last packet, the receive's own outcome: an error reaches the daemon as the
    // call's status.
    let outcome = futures::stream::once(async move {
        match ended.await {
            Ok(Err(status)) => Some(Err(status)),
            _ => None,
        }
    })
    .filter_map(futures::future::ready);
    Box::pin(replies.chain(outcome))
}

async fn receive_into<S>(
    dest: &Path,
    replace: bool,
    packets: S,
    to_daemon: mpsc::Sender<Packet>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Packet, Status>> + Send + 'static,
{
    // The receiver keeps a record of what it wrote beside the tree, for the next sync of
    // the same directory; an export has no next sync, so it lives and dies with the call.
    let state =
        tempfile::tempdir().map_err(|e| Status::internal(format!("a temporary directory: {e}")))?;
    let mut options =
        nodekit_filesync::ReceiveOptions::new(dest, state.path().join("received.json"));
    // The files are the client's: created by us, owned by us (buildctl sets its own uid and
    // gid on every entry).
    options.apply_owner = false;
    options.keep_unlisted = !replace;
    let shown = |e: nodekit_filesync::SyncError| {
        Status::internal(format!("writing into {}: {e}", dest.display()))
    };
    let packets = packets.map(|p| p.map_err(|s| s.message().to_string()));
    nodekit_filesync::receive(options, packets, to_daemon)
        .await
        .map(drop)
        .map_err(shown)
}

/// Hands over each message's bytes as they are: which message it is depends on the exporter.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The service as the session's server mounts it.
#[derive(Clone)]
pub struct FileSendServer(Outputs);

impl FileSendServer {
    pub fn new(outputs: Outputs) -> FileSendServer {
        FileSendServer(outputs)
    }
}

impl NamedService for FileSendServer {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> tower::Service<http::Request<B>> for FileSendServer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let outputs = self.0.clone();
        Box::pin(async move {
            if request.uri().path() != METHOD {
                return Ok(Status::unimplemented(request.uri().path().to_string()).into_http());
            }
            let mut grpc = Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(MAX_MESSAGE), Some(MAX_MESSAGE));
            Ok(grpc.streaming(DiffCopy(outputs), request).await)
        })
    }
}
