//! The blobs of layers that build steps made. A step's uncompressed layer is only hashed when the
//! step commits (its diff ID names the snapshot); the tar itself is written into the content
//! store the first time something needs it — an image export, or a merge that applies the layer
//! onto another stack — straight from the committed snapshot's directory, with no scratch file.
//! The tar is a function of that directory, so it is written with the digest it was hashed to.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::layers::Compression;
use super::upperdir;
use super::Worker;
use crate::Descriptor;

/// Chunks of layer tar in flight between the writing thread and containerd.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Makes sure the content store has `blob`, the uncompressed layer of committed snapshot
/// `snapshot`, writing it from the snapshot (under the caller's lease) if it is missing. The
/// leases that hold the step's result name the blob already, so it stays once written.
pub async fn ensure_built_blob(
    worker: &Worker,
    ctx: &CallContext,
    snapshot: &str,
    blob: &Descriptor,
) -> WorkerResult<()> {
    if content::info(worker.channel(), ctx, &blob.digest)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let snapshots = worker.snapshots();
    let view_key = format!("nodekit-layer-{}", super::random_suffix());
    let mounts = snapshots.view(ctx, &view_key, Some(snapshot)).await?;
    let written = match upperdir::snapshot_dir_in_view(&mounts) {
        Some(dir) => write_from_dir(worker, ctx, dir, blob).await,
        None => Err(WorkerError::Exec(format!(
            "cannot find the directory of snapshot {snapshot} to write its layer {} from",
            blob.digest
        ))),
    };
    snapshots.remove(ctx, &view_key).await?;
    written
}

/// Streams the layer tar of `dir` into the content store as `blob`; containerd checks the
/// digest when it commits.
async fn write_from_dir(
    worker: &Worker,
    ctx: &CallContext,
    dir: PathBuf,
    blob: &Descriptor,
) -> WorkerResult<()> {
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let producer = tokio::task::spawn_blocking(move || {
        let produced = upperdir::write_layer(&dir, ChunkSender(chunks.clone()));
        if let Err(error) = &produced {
            // Ends the stream with the error, so containerd never commits a partial blob.
            let _ = chunks.blocking_send(Err(io::Error::new(error.kind(), error.to_string())));
        }
        produced
    });
    let stream = ReceiverStream::new(received);
    let stored = content::write_blob_stream(
        worker.channel(),
        ctx,
        &blob.digest,
        blob.size,
        stream,
        HashMap::new(),
    )
    .await;
    let produced = producer
        .await
        .map_err(|e| WorkerError::Exec(format!("writing layer {}: {e}", blob.digest)))?;
    let (digest, _) = match produced {
        Ok(produced) => produced,
        // The tar stopped because containerd ended the write: containerd's error says why (a
        // full disk, containerd gone), not the broken pipe.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe && stored.is_err() => {
            return stored.map(drop);
        }
        Err(error) => {
            let context = format!("reading the files of layer {}", blob.digest);
            return Err(WorkerError::io(context, error));
        }
    };
    if digest != blob.digest {
        // containerd refused the commit; say why in the daemon's words.
        return Err(WorkerError::Exec(format!(
            "layer {} changed on disk since its step committed (it now hashes to {digest})",
            blob.digest
        )));
    }
    if stored? {
        worker
            .counters()
            .layer_written(Compression::Uncompressed, blob.size);
    }
    Ok(())
}

/// A `Write` that hands each buffer to the async side as one chunk.
struct ChunkSender(mpsc::Sender<io::Result<Vec<u8>>>);

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.blocking_send(Ok(buf.to_vec())).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the content store went away")
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
