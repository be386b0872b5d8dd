//! Where an import reads a cache from: a directory of the client's, through its session's
//! content store (`type=local`), or a registry (`type=registry`).

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::target::status_text;
use crate::session::content::SessionContentStore;
use crate::worker::images::RegistryReader;
use crate::worker::{Descriptor, Lease, Worker};

/// Chunks in flight between the source and containerd.
const CHUNKS_IN_FLIGHT: usize = 4;

pub enum CacheSource {
    /// The client's directory (`local:<dir>`).
    Local(SessionContentStore),
    Registry(Box<RegistryReader>),
}

impl CacheSource {
    /// A manifest (or index) of at most `limit` bytes, by digest.
    pub async fn manifest(&self, digest: &str, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            CacheSource::Local(store) => read_local(store, digest, limit).await,
            CacheSource::Registry(reader) if reader.top.1 == digest => Ok(reader.top.0.clone()),
            CacheSource::Registry(reader) => {
                reader.manifest(digest).await.map_err(|e| e.to_string())
            }
        }
    }

    /// A config blob of at most `limit` bytes.
    pub async fn config(&self, digest: &str, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            CacheSource::Local(store) => read_local(store, digest, limit).await,
            CacheSource::Registry(reader) => reader.blob(digest).await.map_err(|e| e.to_string()),
        }
    }

    /// Copies `blob` into containerd's content store, under `lease`.
    pub async fn fetch_into(
        &self,
        worker: &Worker,
        lease: &Lease,
        blob: &Descriptor,
    ) -> Result<(), String> {
        match self {
            CacheSource::Local(store) => fetch_local(store, worker, lease, blob).await,
            CacheSource::Registry(reader) => {
                let descriptor = oci_descriptor(blob)?;
                reader
                    .fetch_into(worker, lease, &descriptor)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

async fn read_local(
    store: &SessionContentStore,
    digest: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let size = store
        .size(digest)
        .await
        .map_err(status_text)?
        .ok_or_else(|| format!("{digest} is not in the cache's directory"))?;
    if size > limit {
        return Err(format!("blob {digest} is too large ({size} bytes)"));
    }
    let (chunks, mut received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let reading = store.read(digest, chunks);
    let collecting = async {
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = received.recv().await {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    };
    let (read, bytes) = tokio::join!(reading, collecting);
    read.map_err(status_text)?;
    Ok(bytes)
}

async fn fetch_local(
    store: &SessionContentStore,
    worker: &Worker,
    lease: &Lease,
    blob: &Descriptor,
) -> Result<(), String> {
    let (chunks, received) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let reading = store.read(&blob.digest, chunks);
    let data = ReceiverStream::new(received).map(Ok::<_, std::io::Error>);
    let writing = worker.write_blob_from(lease, &blob.digest, blob.size.max(0) as u64, data);
    let (read, written) = tokio::join!(reading, writing);
    // The writer's error says more when both failed (the reader stops when it goes).
    written.map_err(|e| format!("writing {} into containerd: {e}", blob.digest))?;
    read.map_err(status_text)
}

fn oci_descriptor(blob: &Descriptor) -> Result<oci_spec::image::Descriptor, String> {
    let digest: oci_spec::image::Digest = blob
        .digest
        .parse()
        .map_err(|e| format!("blob {}: {e}", blob.digest))?;
    Ok(oci_spec::image::Descriptor::new(
        oci_spec::image::MediaType::from(blob.media_type.as_str()),
        blob.size.max(0) as u64,
        digest,
    ))
}
