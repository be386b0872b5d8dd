//! Where a cache export's blobs and manifest go: a directory of the client's, through its
//! session's content store (`type=local`).

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::session::content::SessionContentStore;
use crate::worker::{Descriptor, Worker};

/// Chunks in flight between containerd and the place a blob goes.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A remote cache's store.
pub enum CacheStore {
    /// The client's directory (`local:<dir>`).
    Local(SessionContentStore),
}

impl CacheStore {
    /// Whether the store has `blob` already (nothing to write then).
    pub async fn has(&self, blob: &Descriptor) -> Result<bool, String> {
        match self {
            CacheStore::Local(store) => {
                let size = store.size(&blob.digest).await.map_err(status_text)?;
                Ok(size == Some(blob.size.max(0) as u64))
            }
        }
    }

    /// Copies `blob` from containerd's content store into this one.
    pub async fn put_from(&self, worker: &Worker, blob: &Descriptor) -> Result<(), String> {
        let (chunks, received) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let reading = worker.read_blob_into(&blob.digest, chunks);
        let data = ReceiverStream::new(received).map(Bytes::from);
        let writing = self.put_stream(blob, data);
        let (read, written) = tokio::join!(reading, writing);
        // The writer's error says more when both failed (the reader stops when it goes).
        written?;
        read.map_err(|e| format!("reading {} from containerd: {e}", blob.digest))
    }

    /// Writes `bytes` (a config, a manifest) as `blob`.
    pub async fn put_bytes(&self, blob: &Descriptor, bytes: Vec<u8>) -> Result<(), String> {
        let data = futures::stream::iter([Bytes::from(bytes)]);
        self.put_stream(blob, data).await
    }

    /// Writes the cache's top object; in a directory it is one more blob (the client points
    /// its index.json at it).
    pub async fn put_manifest(&self, blob: &Descriptor, bytes: Vec<u8>) -> Result<(), String> {
        self.put_bytes(blob, bytes).await
    }

    async fn put_stream<S>(&self, blob: &Descriptor, data: S) -> Result<(), String>
    where
        S: futures::Stream<Item = Bytes> + Send + 'static,
    {
        match self {
            CacheStore::Local(store) => store
                .write(&blob.digest, blob.size.max(0) as u64, data)
                .await
                .map_err(status_text),
        }
    }
}

pub(super) fn status_text(status: tonic::Status) -> String {
    status.message().to_string()
}
