//! containerd's content store: reading small blobs, writing blobs (from memory or a stream),
//! and the GC reference labels that tie a manifest to its config and layers.

use std::collections::HashMap;

use crate::ContainerdChannel;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::{
    Info, InfoRequest, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use futures::{Stream, StreamExt};

use super::context::CallContext;
use super::error::{StatusExt, WorkerError, WorkerResult};

/// Bytes per WRITE message: large enough to keep the stream busy, well under gRPC's 4 MiB cap.
const WRITE_CHUNK: usize = 1 << 20;

/// Metadata (size, labels) of a blob, or `None` when containerd does not have it.
pub async fn info(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
) -> WorkerResult<Option<Info>> {
    let answer = ContentClient::new(channel.clone())
        .info(ctx.request(InfoRequest {
            digest: digest.to_string(),
        }))
        .await;
    Ok(answer.op_optional("content info")?.and_then(|r| r.info))
}

/// Reads a whole blob into memory (manifests, indexes, configs).
pub async fn read_blob(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
) -> WorkerResult<Vec<u8>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let collect = async move {
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    };
    let (read, bytes) = tokio::join!(read_blob_chunks(channel, ctx, digest, sender), collect);
    read.map(|_| bytes)
}

/// Streams a blob's bytes into `sink` as containerd sends them.
pub async fn read_blob_chunks(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
    sink: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> WorkerResult<()> {
    let mut stream = ContentClient::new(channel.clone())
        .read(ctx.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .op("content read")?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| WorkerError::containerd("content read", s))?
    {
        if sink.send(chunk.data).await.is_err() {
            return Err(WorkerError::Exec(format!("reader of {digest} went away")));
        }
    }
    Ok(())
}

/// Writes `bytes` as the blob `digest` with `labels`; an existing blob counts as written.
pub async fn write_blob(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
    bytes: Vec<u8>,
    labels: HashMap<String, String>,
) -> WorkerResult<()> {
    let total = bytes.len() as i64;
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    write_blob_stream(channel, ctx, digest, total, chunks, labels)
        .await
        .map(drop)
}

/// Streams a blob of `total` bytes into the content store; containerd verifies `digest` on
/// commit. An already existing blob counts as written (and joins the caller's lease); the
/// answer says whether this call wrote it (false: it existed).
pub async fn write_blob_stream<S, B>(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
    total: i64,
    data: S,
    labels: HashMap<String, String>,
) -> WorkerResult<bool>
where
    S: Stream<Item = Result<B, std::io::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    // A unique ref avoids containerd's per-ref lock when two builds fetch one blob at once.
    let write_ref = format!("nodekit-{digest}-{}", super::random_suffix());
    let (sender, receiver) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    let producer = tokio::spawn(produce_writes(
        data,
        sender,
        write_ref,
        total,
        digest.to_string(),
        labels,
    ));
    let requests = tokio_stream_from(receiver);
    let answer = ContentClient::new(channel.clone())
        .write(ctx.request(requests))
        .await;
    let result = match answer {
        Ok(response) => drain_write_responses(response.into_inner()).await,
        Err(status) => Err(status),
    };
    let produced = producer
        .await
        .map_err(|e| WorkerError::Exec(format!("content writer task failed: {e}")))?;
    match result {
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(false),
        Err(status) => Err(WorkerError::containerd(
            format!("content write {digest}"),
            status,
        )),
        Ok(()) => produced.map(|_| true),
    }
}

async fn produce_writes<S, B>(
    data: S,
    sender: tokio::sync::mpsc::Sender<WriteContentRequest>,
    write_ref: String,
    total: i64,
    digest: String,
    labels: HashMap<String, String>,
) -> WorkerResult<()>
where
    S: Stream<Item = Result<B, std::io::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    let mut offset = 0i64;
    let mut data = Box::pin(data);
    while let Some(piece) = data.next().await {
        let piece = piece.map_err(|e| WorkerError::io(format!("reading blob {digest}"), e))?;
        for chunk in piece.as_ref().chunks(WRITE_CHUNK) {
            let request = WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: write_ref.clone(),
                total,
                offset,
                data: chunk.to_vec(),
                ..Default::default()
            };
            offset += chunk.len() as i64;
            if sender.send(request).await.is_err() {
                return Ok(()); // containerd ended the call; its answer carries the reason
            }
        }
    }
    let commit = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: write_ref,
        total,
        offset,
        expected: digest,
        labels,
        ..Default::default()
    };
    let _ = sender.send(commit).await;
    Ok(())
}

/// containerd 1.6 answers a commit twice; reading to the end also surfaces a late error.
async fn drain_write_responses(
    mut responses: tonic::Streaming<containerd_client::services::v1::WriteContentResponse>,
) -> Result<(), tonic::Status> {
    while responses.message().await?.is_some() {}
    Ok(())
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Sets (or, with an empty value, removes) labels on an existing blob.
pub async fn set_labels(
    channel: &ContainerdChannel,
    ctx: &CallContext,
    digest: &str,
    labels: HashMap<String, String>,
) -> WorkerResult<()> {
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    ContentClient::new(channel.clone())
        .update(ctx.request(UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .op("content update")?;
    Ok(())
}

/// The GC labels of a manifest: it keeps its config and every layer alive.
pub fn manifest_gc_labels(config: &str, layers: &[String]) -> HashMap<String, String> {
    let mut labels = HashMap::from([(
        "containerd.io/gc.ref.content.config".to_string(),
        config.to_string(),
    )]);
    for (i, layer) in layers.iter().enumerate() {
        labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), layer.clone());
    }
    labels
}

/// The GC labels of an index: it keeps its manifests alive.
pub fn index_gc_labels(manifests: &[String]) -> HashMap<String, String> {
    manifests
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("containerd.io/gc.ref.content.m.{i}"), m.clone()))
        .collect()
}

/// The label containerd's unpacker puts on an image config: keeps the unpacked snapshot chain
/// and tells `ctr run`, CRI and nodekit that the image needs no unpack.
pub fn snapshot_gc_label(snapshotter: &str, chain_id: &str) -> (String, String) {
    (
        format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
        chain_id.to_string(),
    )
}

/// The label holding a compressed layer's uncompressed digest (its diff ID).
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";
