//! Compressing a layer that is in the content store as an uncompressed tar. containerd 1.6's
//! Diff service cannot write zstd, and nodekit keeps intermediate layers uncompressed anyway
//! (it compresses only what is exported). The tar streams out of the content store through the
//! encoder into a scratch file, hashed as it goes, and is written back as its own blob,
//! labelled with its diff ID.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::layers::Compression;
use super::Worker;
use crate::Descriptor;

/// zstd's default level, as BuildKit uses it.
const ZSTD_LEVEL: i32 = 3;

/// Writes the `compression` copy of the uncompressed layer `tar` and returns its descriptor
/// (`tar` itself for `Uncompressed`).
pub async fn compress_layer(
    worker: &Worker,
    ctx: &CallContext,
    tar: &Descriptor,
    compression: Compression,
) -> WorkerResult<Descriptor> {
    if compression == Compression::Uncompressed {
        return Ok(tar.clone());
    }
    if let Some(kept) = kept_copy(worker, ctx, tar, compression).await? {
        return Ok(kept);
    }
    let scratch = worker
        .mount_source_root()
        .join(format!(".layer-{}", super::random_suffix()));
    let result = match compress_to_file(worker, ctx, &tar.digest, &scratch, compression).await {
        Ok(written) => store_file(worker, ctx, &scratch, &written, &tar.digest, compression).await,
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_file(&scratch).await;
    result
}

/// The label on an uncompressed layer naming its `compression` copy. A containerd GC
/// reference: the copy lives as long as the layer does (a later push or cache export of the
/// layer sends it again without compressing it again).
fn copy_label(compression: Compression) -> String {
    format!(
        "containerd.io/gc.ref.content.nodekit.{}",
        compression.as_str()
    )
}

/// The `compression` copy an earlier compression of `tar` left, if it is still there.
async fn kept_copy(
    worker: &Worker,
    ctx: &CallContext,
    tar: &Descriptor,
    compression: Compression,
) -> WorkerResult<Option<Descriptor>> {
    let Some(info) = content::info(worker.channel(), ctx, &tar.digest).await? else {
        return Ok(None);
    };
    let Some(digest) = info.labels.get(&copy_label(compression)) else {
        return Ok(None);
    };
    // Held by the caller's lease before it is looked for: a copy found present may be garbage
    // already (its layer released meanwhile), collected before the caller reads it.
    if let Some(lease) = ctx.lease() {
        let held = crate::cache_leases::CacheResources {
            snapshot: None,
            blobs: vec![digest.clone()],
        };
        worker.add_to_lease(lease, &held).await?;
    }
    let Some(copy) = content::info(worker.channel(), ctx, digest).await? else {
        return Ok(None);
    };
    Ok(Some(Descriptor {
        media_type: compression.media_type().to_string(),
        digest: digest.clone(),
        size: copy.size,
        annotations: HashMap::new(),
    }))
}

/// Digest and size of a compressed scratch file.
struct Written {
    digest: String,
    size: i64,
}

async fn compress_to_file(
    worker: &Worker,
    ctx: &CallContext,
    tar_digest: &str,
    scratch: &Path,
    compression: Compression,
) -> WorkerResult<Written> {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(4);
    let path = scratch.to_path_buf();
    let encoder = tokio::task::spawn_blocking(move || encode(receiver, path, compression));
    let streamed = content::read_blob_chunks(worker.channel(), ctx, tar_digest, sender).await;
    let encoded = encoder
        .await
        .map_err(|e| WorkerError::Exec(format!("layer encoder failed: {e}")))?;
    streamed?;
    encoded.map_err(|e| WorkerError::io(format!("compressing layer {tar_digest}"), e))
}

/// Compresses what arrives on `chunks` into `path`.
fn encode(
    chunks: mpsc::Receiver<Vec<u8>>,
    path: PathBuf,
    compression: Compression,
) -> std::io::Result<Written> {
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let hashing = HashingWriter::new(file);
    let mut hashed = match compression {
        Compression::Zstd => {
            let encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL)?;
            feed(chunks, encoder)?.finish()?
        }
        _ => {
            let encoder = flate2::write::GzEncoder::new(hashing, flate2::Compression::default());
            feed(chunks, encoder)?.finish()?
        }
    };
    hashed.inner.flush()?;
    Ok(Written {
        digest: format!("sha256:{}", hex::encode(hashed.hasher.finalize())),
        size: hashed.size,
    })
}

fn feed<W: Write>(mut chunks: mpsc::Receiver<Vec<u8>>, mut encoder: W) -> std::io::Result<W> {
    while let Some(chunk) = chunks.blocking_recv() {
        encoder.write_all(&chunk)?;
    }
    Ok(encoder)
}

async fn store_file(
    worker: &Worker,
    ctx: &CallContext,
    path: &Path,
    written: &Written,
    diff_id: &str,
    compression: Compression,
) -> WorkerResult<Descriptor> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| WorkerError::io(format!("opening {}", path.display()), e))?;
    let labels = HashMap::from([(content::UNCOMPRESSED_LABEL.to_string(), diff_id.to_string())]);
    let stream = ReaderStream::new(file);
    let stored = content::write_blob_stream(
        worker.channel(),
        ctx,
        &written.digest,
        written.size,
        stream,
        labels,
    )
    .await?;
    if stored {
        worker.counters().layer_written(compression, written.size);
    }
    let label = HashMap::from([(copy_label(compression), written.digest.clone())]);
    content::set_labels(worker.channel(), ctx, diff_id, label).await?;
    Ok(Descriptor {
        media_type: compression.media_type().to_string(),
        digest: written.digest.clone(),
        size: written.size,
        annotations: HashMap::new(),
    })
}

/// Counts and hashes what passes through to the inner writer.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: i64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as i64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
