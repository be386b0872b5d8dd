//! An imported record made this node's when a build reaches its step: the layers whose
//! snapshots the node lacks are fetched from the imported cache, unpacked as chain-ID
//! snapshots, held by a cache lease of the record's own, and the record is inserted into the
//! index (the next build, and the lookup that follows, hit it locally).

use cachestore::remote::ImportedRecord;
use cachestore::{CacheKey, Record};

use super::import::ImportedCache;
use crate::oci::chain_ids;
use crate::solver::cache::index::{now_ms, CacheIndex};
use crate::solver::cache::stored::StoredRef;
use crate::worker::chains::LayerBlob;
use crate::worker::Lease;

impl CacheIndex {
    /// Makes the records under `keys` (every output of one step) this node's from `cache`.
    pub async fn import_records(
        &self,
        cache: &ImportedCache,
        keys: &[CacheKey],
    ) -> Result<(), String> {
        let lease = self
            .worker()
            .lease("cache-import")
            .await
            .map_err(|e| e.to_string())?;
        let mut made = Vec::new();
        let mut outcome = Ok(());
        for key in keys {
            let Some(imported) = cache.records.get(key) else {
                continue;
            };
            match self.import_record(cache, imported, &lease).await {
                Ok(record) => made.push(record),
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        let outcome = match outcome {
            Ok(()) => self.insert_imported(made).await,
            Err(error) => {
                self.release(&made).await;
                Err(error)
            }
        };
        let _ = lease.release().await;
        outcome
    }

    async fn insert_imported(&self, made: Vec<Record>) -> Result<(), String> {
        let store = self.store().clone();
        let inserted = made.clone();
        let present =
            tokio::task::spawn_blocking(move || store.insert_absent(inserted.into_iter().map(Ok)))
                .await
                .map_err(|e| e.to_string())?;
        match present {
            // Recorded meanwhile by a build on this node: that one stays.
            Ok(present) => {
                self.release(&present).await;
                self.grew.notify_one();
                Ok(())
            }
            Err(error) => {
                self.release(&made).await;
                Err(error.to_string())
            }
        }
    }

    async fn import_record(
        &self,
        cache: &ImportedCache,
        imported: &ImportedRecord,
        lease: &Lease,
    ) -> Result<Record, String> {
        let record = &imported.record;
        let what = format!("{} ({})", record.key, record.description);
        let stored = StoredRef::decode(&record.payload).ok_or_else(|| {
            format!(
                "record {what} was stored by a nodekitd whose result format this one does not read"
            )
        })?;
        let blobs = self.imported_blobs(cache, imported, &stored, &what).await?;
        self.fetch_missing(cache, &blobs, lease).await?;
        let cached: Vec<String> = blobs.iter().map(|b| b.blob.digest.clone()).collect();
        self.unpack_record(record.clone(), &stored, &blobs, cached, lease)
            .await
    }

    /// The record's layers as the imported cache holds them, bottom first.
    async fn imported_blobs(
        &self,
        cache: &ImportedCache,
        imported: &ImportedRecord,
        stored: &StoredRef,
        what: &str,
    ) -> Result<Vec<LayerBlob>, String> {
        let diff_ids = self.diff_ids_of(stored, what).await?;
        if diff_ids.len() != imported.chain.len() {
            return Err(format!(
                "record {what}: the cache lists {} layers for a result of {}",
                imported.chain.len(),
                diff_ids.len()
            ));
        }
        imported
            .chain
            .iter()
            .zip(diff_ids)
            .map(|(digest, diff_id)| {
                let blob = cache.layers.get(digest).cloned().ok_or_else(|| {
                    format!("record {what}: its layer {digest} is not in the cache's manifest")
                })?;
                Ok(LayerBlob {
                    blob,
                    diff_id,
                    fetch: None,
                    built_in: None,
                })
            })
            .collect()
    }

    /// The diff IDs of a stored result's layers: its base image's (which the build resolved,
    /// so this node has its manifest) and its own.
    async fn diff_ids_of(&self, stored: &StoredRef, what: &str) -> Result<Vec<String>, String> {
        let mut diff_ids = match &stored.base {
            Some(base) => self
                .base(base)
                .await
                .ok_or_else(|| {
                    format!(
                        "record {what}: its base image {} is not in containerd's content store",
                        base.name
                    )
                })?
                .diff_ids(),
            None => Vec::new(),
        };
        diff_ids.extend(stored.layers.iter().map(|l| l.diff_id.clone()));
        Ok(diff_ids)
    }

    /// Fetches the blobs of the layers whose snapshots the node lacks and containerd's content
    /// store does not have.
    async fn fetch_missing(
        &self,
        cache: &ImportedCache,
        blobs: &[LayerBlob],
        lease: &Lease,
    ) -> Result<(), String> {
        let worker = self.worker();
        let diff_ids: Vec<&str> = blobs.iter().map(|b| b.diff_id.as_str()).collect();
        let chains = chain_ids(&diff_ids);
        let snapshots = worker.snapshots();
        let ctx = lease.context();
        // Everything below the highest snapshot that exists is there too.
        let mut have = 0;
        for (depth, chain) in chains.iter().enumerate().rev() {
            if snapshots
                .exists(&ctx, chain)
                .await
                .map_err(|e| e.to_string())?
            {
                have = depth + 1;
                break;
            }
        }
        for layer in &blobs[have..] {
            let blob = &layer.blob;
            let size = self.hold_and_size(lease, &blob.digest).await?;
            if size != Some(blob.size.max(0) as u64) {
                cache.source.fetch_into(worker, lease, blob).await?;
            }
        }
        Ok(())
    }

    /// Unpacks `blobs` as the record's snapshots and gives the record a cache lease holding
    /// them, its stored blobs and `cached` (the blobs it came in, kept for the next export).
    pub(in crate::solver::cache) async fn unpack_record(
        &self,
        record: Record,
        stored: &StoredRef,
        blobs: &[LayerBlob],
        cached: Vec<String>,
        lease: &Lease,
    ) -> Result<Record, String> {
        let what = format!("{} ({})", record.key, record.description);
        let snapshot = self
            .worker()
            .apply_chain(lease, blobs, &what)
            .await
            .map_err(|e| format!("record {what}: unpacking its layers: {e}"))?;
        let cache_lease = crate::solver::cache::index::cache_lease_name(&record.key);
        let mut held = stored.blobs();
        held.extend(cached);
        held.sort();
        held.dedup();
        let resources = crate::worker::cache_leases::CacheResources {
            snapshot: snapshot.clone(),
            blobs: held,
        };
        self.worker()
            .create_cache_lease(&cache_lease, &resources)
            .await
            .map_err(|e| format!("record {what}: {e}"))?;
        Ok(Record {
            snapshot: snapshot.unwrap_or_default(),
            lease: cache_lease,
            last_used_ms: now_ms(),
            hit_count: 0,
            ..record
        })
    }
}
