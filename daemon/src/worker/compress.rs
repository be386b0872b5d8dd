//! zstd layers. containerd 1.6's Diff service only writes tar and tar+gzip, so for zstd
//! nodekit takes the uncompressed tar from the content store, compresses it with the zstd crate
//! (into a scratch file, hashing as it goes) and writes the result back as its own blob.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use containerd_client::types::Descriptor;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::Worker;
use crate::oci;

/// zstd's default level, as BuildKit uses it.
const ZSTD_LEVEL: i32 = 3;

/// Writes the zstd-compressed copy of the uncompressed layer `tar` and returns its descriptor.
pub async fn zstd_layer(
    worker: &Worker,
    ctx: &CallContext,
    tar: &Descriptor,
) -> WorkerResult<Descriptor> {
    let scratch = worker
        .mount_source_root()
        .join(format!(".zstd-{}", super::random_suffix()));
    let compressed = compress_to_file(worker, ctx, &tar.digest, &scratch).await;
    let result = match compressed {
        Ok((digest, size)) => store_file(worker, ctx, &scratch, &digest, size, &tar.digest).await,
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_file(&scratch).await;
    result
}

async fn compress_to_file(
    worker: &Worker,
    ctx: &CallContext,
    tar_digest: &str,
    scratch: &Path,
) -> WorkerResult<(String, i64)> {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(4);
    let path = scratch.to_path_buf();
    let encoder = tokio::task::spawn_blocking(move || encode(receiver, path));
    let streamed = content::read_blob_chunks(worker.channel(), ctx, tar_digest, sender).await;
    let encoded = encoder
        .await
        .map_err(|e| WorkerError::Exec(format!("zstd encoder failed: {e}")))?;
    streamed?;
    encoded.map_err(|e| WorkerError::io(format!("compressing layer {tar_digest}"), e))
}

/// Compresses what arrives on `chunks` into `path`; returns the digest and size written.
fn encode(mut chunks: mpsc::Receiver<Vec<u8>>, path: PathBuf) -> std::io::Result<(String, i64)> {
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut encoder = zstd::stream::write::Encoder::new(HashingWriter::new(file), ZSTD_LEVEL)?;
    while let Some(chunk) = chunks.blocking_recv() {
        encoder.write_all(&chunk)?;
    }
    let mut hashed = encoder.finish()?;
    hashed.inner.flush()?;
    Ok((
        format!("sha256:{}", hex::encode(hashed.hasher.finalize())),
        hashed.size,
    ))
}

async fn store_file(
    worker: &Worker,
    ctx: &CallContext,
    path: &Path,
    digest: &str,
    size: i64,
    diff_id: &str,
) -> WorkerResult<Descriptor> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| WorkerError::io(format!("opening {}", path.display()), e))?;
    let labels = HashMap::from([(content::UNCOMPRESSED_LABEL.to_string(), diff_id.to_string())]);
    content::write_blob_stream(
        worker.channel(),
        ctx,
        digest,
        size,
        ReaderStream::new(file),
        labels,
    )
    .await?;
    Ok(Descriptor {
        media_type: oci::OCI_LAYER_ZSTD.to_string(),
        digest: digest.to_string(),
        size,
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
