//! Where a cache export's blobs and manifest go: a directory of the client's, through its
//! session's content store (`type=local`), or a registry repository (`type=registry`). Either
//! way a blob the place has already is not sent again.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::session::content::SessionContentStore;
use crate::worker::images::Pusher;
use crate::worker::{Descriptor, Lease, Worker};

/// Chunks in flight between containerd and the place a blob goes.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A remote cache's store.
pub enum CacheStore {
    /// The client's directory (`local:<dir>`).
    Local(SessionContentStore),
    /// A repository, the manifest going under `tag` (a tag or a digest).
    Registry { pusher: Box<Pusher>, tag: String },
}

impl CacheStore {
    /// Makes sure the store has `blob` (of containerd's content store).
    pub async fn put_from(&self, worker: &Worker, blob: &Descriptor) -> Result<(), String> {
        match self {
            CacheStore::Local(store) => {
                let size = store.size(&blob.digest).await.map_err(status_text)?;
                if size == Some(blob.size.max(0) as u64) {
                    return Ok(());
                }
                copy_local(store, worker, blob).await
            }
            CacheStore::Registry { pusher, .. } => pusher
                .push_blob(worker, blob)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// Writes `bytes` (the cache config) as `blob`; for a registry it goes through
    /// containerd's content store, under `lease`.
    pub async fn put_bytes(
        &self,
        worker: &Worker,
        lease: &Lease,
        blob: &Descriptor,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            CacheStore::Local(store) => {
                let data = futures::stream::iter([Bytes::from(bytes)]);
                store
                    .write(&blob.digest, blob.size.max(0) as u64, data)
                    .await
                    .map_err(status_text)
            }
            CacheStore::Registry { .. } => {
                let data = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
                worker
                    .write_blob_from(lease, &blob.digest, blob.size.max(0) as u64, data)
                    .await
                    .map_err(|e| e.to_string())?;
                self.put_from(worker, blob).await
            }
        }
    }

    /// Writes the cache's top object: in a directory one more blob (the client points its
    /// index.json at it), in a registry the manifest under the tag.
    pub async fn put_manifest(
        &self,
        worker: &Worker,
        lease: &Lease,
        blob: &Descriptor,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            CacheStore::Local(_) => self.put_bytes(worker, lease, blob, bytes).await,
            CacheStore::Registry { pusher, tag } => pusher
                .push_manifest(tag, &blob.media_type, bytes)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

async fn copy_local(
    store: &SessionContentStore,
    worker: &Worker,
    blob: &Descriptor,
) -> Result<(), String> {
    let (chunks, received) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let reading = worker.read_blob_into(&blob.digest, chunks);
    let data = ReceiverStream::new(received).map(Bytes::from);
    let writing = store.write(&blob.digest, blob.size.max(0) as u64, data);
    let (read, written) = tokio::join!(reading, writing);
    // The writer's error says more when both failed (the reader stops when it goes).
    written.map_err(status_text)?;
    read.map_err(|e| format!("reading {} from containerd: {e}", blob.digest))
}

pub(super) fn status_text(status: tonic::Status) -> String {
    status.message().to_string()
}
