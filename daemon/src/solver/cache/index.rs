//! The build cache on a node: the `cachestore` index of results, each record naming a committed
//! containerd snapshot held by a cache lease of its own. A hit is an index lookup plus a check
//! that containerd still has the snapshot; a record whose snapshot is gone (the kubelet's image
//! GC, a manual prune) is dropped and the step runs again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use cachestore::metrics::OpKind;
use cachestore::{CacheKey, LayerDescriptor, Record, RecordKind, Store};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::stored::StoredRef;
use super::{CacheEntry, ResultCache};
use crate::solver::result::{CacheHold, Layer, Ref};
use crate::worker::cache_leases::CacheResources;
use crate::worker::{images, Worker};

/// Rebuilt base images kept in memory, by manifest digest (a hit rebuilds its base from them).
const BASES_KEPT: usize = 64;

pub struct CacheIndex {
    store: Arc<Store>,
    worker: Worker,
    /// Records held by running builds, with how many results hold each.
    in_use: Arc<Mutex<HashMap<CacheKey, usize>>>,
    bases: Mutex<HashMap<String, Arc<crate::worker::ResolvedImage>>>,
    /// Signalled when the cache grew: the GC loop runs a little later.
    pub grew: tokio::sync::Notify,
}

/// What reconciliation at start found.
#[derive(Debug, Default)]
pub struct Reconciliation {
    pub records: u64,
    pub dropped: usize,
    pub leases_released: usize,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CacheIndex {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path, worker: Worker) -> Result<CacheIndex, cachestore::Error> {
        Ok(CacheIndex::with_store(Store::open(path)?, worker))
    }

    /// The index of an already opened store.
    pub fn with_store(store: Store, worker: Worker) -> CacheIndex {
        CacheIndex {
            store: Arc::new(store),
            worker,
            in_use: Arc::default(),
            bases: Mutex::default(),
            grew: tokio::sync::Notify::new(),
        }
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Drops records whose snapshot containerd no longer has and releases cache leases no
    /// record holds (what a `kill -9` between lease and record left).
    pub async fn reconcile(&self) -> anyhow::Result<Reconciliation> {
        let mut snapshots = self.worker.snapshot_names().await?;
        // Records of empty results name no snapshot.
        snapshots.insert(String::new());
        let leases = self.worker.cache_leases().await?;
        let store = self.store.clone();
        let found =
            tokio::task::spawn_blocking(move || store.reconcile(&snapshots, &leases)).await??;
        for lease in &found.orphan_leases {
            self.worker.delete_cache_lease(lease).await?;
        }
        Ok(Reconciliation {
            records: self.store.len()?,
            dropped: found.dropped,
            leases_released: found.orphan_leases.len(),
        })
    }

    /// The records running builds hold now.
    pub fn in_use(&self) -> HashSet<CacheKey> {
        self.in_use.lock().keys().copied().collect()
    }

    /// Removes records (already out of the index) from containerd: releases their leases.
    pub async fn release(&self, removed: &[Record]) {
        for record in removed {
            if let Err(error) = self.worker.delete_cache_lease(&record.lease).await {
                tracing::warn!(lease = %record.lease, %error, "could not release a cache lease");
            }
        }
    }

    async fn lookup_outputs(&self, key: &CacheKey, outputs: usize) -> Option<Vec<Ref>> {
        let mut refs = Vec::with_capacity(outputs);
        for index in 0..outputs {
            let output = key.for_output(index as u32);
            let record = self.store.get(&output).ok()??;
            match self.resolve(&record).await {
                Some(result) => refs.push(result),
                None => {
                    self.drop_record(&output).await;
                    return None;
                }
            }
        }
        Some(refs)
    }

    /// The result a record names, if containerd still has it.
    async fn resolve(&self, record: &Record) -> Option<Ref> {
        let stored = StoredRef::decode(&record.payload)?;
        if !record.snapshot.is_empty() {
            let snapshots = self.worker.snapshots();
            if !snapshots
                .exists(self.worker.ctx(), &record.snapshot)
                .await
                .ok()?
            {
                tracing::info!(record = %record.key, snapshot = %record.snapshot, "cached snapshot is gone; the step runs again");
                return None;
            }
        }
        let base = match &stored.base {
            Some(base) => Some(self.base(base).await?),
            None => None,
        };
        let layers = stored.layers_on(base.as_deref())?;
        let _ = self.store.touch(&record.key, now_ms());
        Some(Ref {
            view: None,
            layers,
            base,
            owners: Vec::new(),
            key: Some(record.key),
            content: None,
            cache_holds: vec![self.hold(record.key)],
        })
    }

    pub(super) async fn base(
        &self,
        base: &super::stored::StoredBase,
    ) -> Option<Arc<crate::worker::ResolvedImage>> {
        let digest = &base.manifest.digest;
        if let Some(found) = self.bases.lock().get(digest) {
            return Some(found.clone());
        }
        let image = images::from_content(
            &self.worker,
            &base.name,
            base.descriptor(),
            &base.platform()?,
        )
        .await
        .ok()??;
        let image = Arc::new(image);
        let mut bases = self.bases.lock();
        if bases.len() >= BASES_KEPT {
            bases.clear();
        }
        bases.insert(digest.clone(), image.clone());
        Some(image)
    }

    /// A record's stored result and its layers (its base image rebuilt from the content
    /// store); the error says why it cannot be had.
    pub(super) async fn stored_layers(
        &self,
        record: &Record,
    ) -> Result<(StoredRef, Vec<Layer>), &'static str> {
        let stored = StoredRef::decode(&record.payload)
            .ok_or("its result was recorded by an older nodekitd")?;
        let base = match &stored.base {
            Some(base) => Some(
                self.base(base)
                    .await
                    .ok_or("its base image is no longer in containerd's content store")?,
            ),
            None => None,
        };
        let layers = stored
            .layers_on(base.as_deref())
            .ok_or("its layers do not decode")?;
        Ok((stored, layers))
    }

    /// Holds blob `digest` by `lease` first, then sizes it (None: not in the content store).
    /// In that order: a blob found present may be garbage already (a prune meanwhile released
    /// its record's lease, or an earlier import failed), collected at any moment.
    pub(super) async fn hold_and_size(
        &self,
        lease: &crate::worker::Lease,
        digest: &str,
    ) -> Result<Option<u64>, String> {
        let held = CacheResources {
            snapshot: None,
            blobs: vec![digest.to_string()],
        };
        self.worker
            .add_to_lease(lease.id(), &held)
            .await
            .map_err(|e| e.to_string())?;
        self.worker
            .blob_size(digest)
            .await
            .map_err(|e| e.to_string())
    }

    fn hold(&self, key: CacheKey) -> Arc<CacheHold> {
        *self.in_use.lock().entry(key).or_default() += 1;
        let in_use = self.in_use.clone();
        Arc::new(CacheHold {
            key,
            release: Box::new(move |key| {
                let mut held = in_use.lock();
                if let Some(count) = held.get_mut(key) {
                    *count -= 1;
                    if *count == 0 {
                        held.remove(key);
                    }
                }
            }),
        })
    }

    async fn drop_record(&self, key: &CacheKey) {
        let store = self.store.clone();
        let key = *key;
        let removed = tokio::task::spawn_blocking(move || store.remove(&[key])).await;
        if let Ok(Ok(removed)) = removed {
            self.release(&removed).await;
        }
    }

    /// Records each output: a cache lease on its snapshot and blobs first, then the record.
    async fn record_outputs(&self, entry: &CacheEntry<'_>) -> anyhow::Result<()> {
        let parents: Vec<CacheKey> = entry.inputs.iter().filter_map(|i| i.key).collect();
        let mut records = Vec::with_capacity(entry.outputs.len());
        for (index, output) in entry.outputs.iter().enumerate() {
            let key = entry.key.for_output(index as u32);
            let stored = StoredRef::of(output);
            let lease = cache_lease_name(&key);
            let resources = CacheResources {
                snapshot: output.chain_id(),
                blobs: stored.blobs(),
            };
            self.worker.create_cache_lease(&lease, &resources).await?;
            records.push(Record {
                key,
                output_index: index as u32,
                snapshot: output.chain_id().unwrap_or_default(),
                lease,
                layer: top_layer(output),
                size: top_layer(output).map_or(0, |l| l.size),
                created_ms: now_ms(),
                last_used_ms: now_ms(),
                hit_count: 0,
                platform: entry.platform.clone(),
                kind: RecordKind::Regular,
                description: entry.description.clone(),
                parents: parents.clone(),
                payload: stored.encode(),
            });
        }
        let keys: Vec<CacheKey> = records.iter().map(|r| r.key).collect();
        let store = self.store.clone();
        let replaced = tokio::task::spawn_blocking(move || {
            let replaced = store.remove(&keys)?;
            store.insert_many(&records)?;
            Ok::<_, cachestore::Error>(replaced)
        })
        .await??;
        self.release(&replaced).await;
        self.grew.notify_one();
        Ok(())
    }
}

/// A new name for the cache lease of the record under `key`.
pub(super) fn cache_lease_name(key: &CacheKey) -> String {
    format!(
        "nodekit-cache-{}-{}",
        &key.to_hex()[..24],
        crate::worker::random_suffix()
    )
}

/// The layer the result's op added (what `du` sizes the record by).
fn top_layer(result: &Ref) -> Option<LayerDescriptor> {
    match result.layers.last()? {
        Layer::Built(built) => Some(LayerDescriptor {
            digest: built.blob.digest.clone(),
            media_type: built.blob.media_type.clone(),
            size: built.blob.size.max(0) as u64,
        }),
        Layer::Image(_) => None,
    }
}

impl ResultCache for CacheIndex {
    fn lookup<'a>(
        &'a self,
        key: &'a CacheKey,
        outputs: usize,
        kind: OpKind,
    ) -> BoxFuture<'a, Option<Vec<Ref>>> {
        async move {
            let found = self.lookup_outputs(key, outputs).await;
            match &found {
                Some(_) => self.store.metrics().hit(kind),
                None => self.store.metrics().miss(kind),
            }
            found
        }
        .boxed()
    }

    fn record<'a>(&'a self, entry: CacheEntry<'a>) -> BoxFuture<'a, ()> {
        async move {
            if let Err(error) = self.record_outputs(&entry).await {
                tracing::warn!(key = %entry.key, %error, "could not record a result in the cache");
            }
        }
        .boxed()
    }
}
