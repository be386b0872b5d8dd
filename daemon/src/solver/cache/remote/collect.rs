//! The records an export carries, each with its result's layers as the blobs the remote cache
//! holds: a step's layer in the export's compression (written from its snapshot and compressed
//! the first time), a base image's layer as its registry has it. Every blob is held by the
//! export's lease until it was written out.

use std::collections::HashMap;

use cachestore::{CacheKey, Record};

use crate::oci;
use crate::solver::cache::index::CacheIndex;
use crate::solver::result::Layer;
use crate::worker::{Compression, Descriptor, Lease};

/// The annotation naming a layer blob's uncompressed digest (its diff ID).
pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// A record to export and its result's layer blobs, bottom first.
pub struct RemoteRecord {
    pub record: Record,
    pub chain: Vec<Descriptor>,
}

/// What collecting found: the records, and those left out with the reason.
#[derive(Default)]
pub struct Collected {
    pub records: Vec<RemoteRecord>,
    pub skipped: Vec<String>,
}

/// One export's blobs by diff ID: records share the layers below their own.
type Compressed = HashMap<String, Descriptor>;

impl CacheIndex {
    /// The records under `keys` that this node has, with their blobs ready in the content
    /// store under `lease`.
    pub async fn collect_remote(
        &self,
        keys: &[CacheKey],
        compression: Compression,
        lease: &Lease,
    ) -> Collected {
        let mut collected = Collected::default();
        let mut compressed = Compressed::new();
        for key in keys {
            let Ok(Some(record)) = self.store().get(key) else {
                continue;
            };
            match self
                .remote_chain(&record, compression, lease, &mut compressed)
                .await
            {
                Ok(chain) => collected.records.push(RemoteRecord { record, chain }),
                Err(reason) => collected
                    .skipped
                    .push(format!("{} ({}): {reason}", record.key, record.description)),
            }
        }
        collected
    }

    async fn remote_chain(
        &self,
        record: &Record,
        compression: Compression,
        lease: &Lease,
        compressed: &mut Compressed,
    ) -> Result<Vec<Descriptor>, String> {
        let (_, layers) = self.stored_layers(record).await?;
        let mut chain = Vec::with_capacity(layers.len());
        for layer in &layers {
            let blob = match compressed.get(layer.diff_id()) {
                Some(blob) => blob.clone(),
                None => {
                    let blob = self.remote_blob(layer, compression, lease).await?;
                    compressed.insert(layer.diff_id().to_string(), blob.clone());
                    blob
                }
            };
            chain.push(blob);
        }
        Ok(chain)
    }

    /// The blob a remote cache holds for `layer`, in the content store and held by `lease`.
    async fn remote_blob(
        &self,
        layer: &Layer,
        compression: Compression,
        lease: &Lease,
    ) -> Result<Descriptor, String> {
        let worker = self.worker();
        let blob = match layer {
            Layer::Built(built) => {
                worker
                    .ensure_layer_blob(lease, &built.chain_id, &built.blob)
                    .await
                    .map_err(|e| format!("writing its layer {}: {e}", built.blob.digest))?;
                worker
                    .compress_layer(lease, &built.blob, compression)
                    .await
                    .map_err(|e| format!("compressing its layer {}: {e}", built.blob.digest))?
            }
            Layer::Image(_) => layer.to_blob().blob,
        };
        if self.hold_and_size(lease, &blob.digest).await?.is_none() {
            return Err(format!(
                "its layer {} is no longer in containerd's content store",
                blob.digest
            ));
        }
        Ok(Descriptor {
            media_type: oci::layer_media_type(&blob.media_type, true).to_string(),
            annotations: HashMap::from([(UNCOMPRESSED.to_string(), layer.diff_id().to_string())]),
            ..blob
        })
    }
}
