//! Import: a bundle read on a blocking thread, its blobs written into the content store as
//! they stream (under the import's lease), its records made visible at the end, all or none.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cachestore::bundle::{read_bundle, BlobHeader, BundleError, BundleHeader, BundleVisitor};
use cachestore::Record;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::spool::Spool;
use super::{ChunkReader, CHUNK};
use crate::solver::cache::index::CacheIndex;
use crate::solver::cache::stored::StoredRef;
use crate::worker::cache_leases::CacheResources;
use crate::worker::{Lease, Worker};

/// Why an import failed: the bundle (the client's input) or this node (containerd, the index).
#[derive(Debug)]
pub enum ImportFailure {
    Bundle(String),
    Node(String),
}

impl std::fmt::Display for ImportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportFailure::Bundle(message) | ImportFailure::Node(message) => f.write_str(message),
        }
    }
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub records_imported: u64,
    /// Records the node had already (kept as they were).
    pub records_present: u64,
    pub blobs_written: u64,
    pub blobs_present: u64,
}

/// The reading thread's side: writes blobs as they come, keeps records until the end.
struct Importer {
    worker: Worker,
    lease: Arc<Lease>,
    runtime: Handle,
    records: Spool,
    blobs_written: u64,
    blobs_present: u64,
}

impl BundleVisitor for Importer {
    fn header(&mut self, header: &BundleHeader) -> Result<(), String> {
        tracing::info!(producer = %header.producer, created_ms = header.created_ms, "importing a cache bundle");
        Ok(())
    }

    fn blob(&mut self, header: &BlobHeader, data: &mut dyn Read) -> Result<(), String> {
        // Held by the import's lease before it is looked for: a blob found present may be
        // garbage already (of an earlier import that failed), collected at any moment.
        let held = CacheResources {
            snapshot: None,
            blobs: vec![header.digest.clone()],
        };
        let present = self
            .runtime
            .block_on(async {
                self.worker.add_to_lease(self.lease.id(), &held).await?;
                self.worker.blob_size(&header.digest).await
            })
            .map_err(|e| e.to_string())?;
        if present == Some(header.size) {
            // The reader still reads and verifies it.
            self.blobs_present += 1;
            return Ok(());
        }
        let (chunks, received) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        let (worker, lease) = (self.worker.clone(), self.lease.clone());
        let (digest, size) = (header.digest.clone(), header.size);
        let write = self.runtime.spawn(async move {
            worker
                .write_blob_from(&lease, &digest, size, ReceiverStream::new(received))
                .await
        });
        let fed = feed(data, &chunks);
        drop(chunks);
        let written = self.runtime.block_on(write).map_err(|e| e.to_string())?;
        fed?;
        written.map_err(|e| format!("writing blob {}: {e}", header.digest))?;
        self.blobs_written += 1;
        Ok(())
    }

    fn record(&mut self, record: Record) -> Result<(), String> {
        if StoredRef::decode(&record.payload).is_none() {
            return Err(format!(
                "record {} ({}) was stored by a nodekitd whose result format this one does not read",
                record.key, record.description
            ));
        }
        self.records
            .push(&record)
            .map_err(|e| format!("keeping the bundle's records until it is verified: {e}"))
    }
}

/// Sends `data` in chunks; a read error is passed on to the writer too, so it aborts.
fn feed(
    data: &mut dyn Read,
    chunks: &mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> Result<(), String> {
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let read = match data.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) => {
                let message = error.to_string();
                let _ = chunks.blocking_send(Err(error));
                return Err(message);
            }
        };
        chunk.truncate(read);
        if chunks.blocking_send(Ok(chunk)).is_err() {
            // The writer failed; its error is reported.
            return Ok(());
        }
    }
}

impl CacheIndex {
    /// Reads a bundle from `source` and makes its records visible, or fails having made
    /// nothing visible (the blobs written so far go with the import's lease).
    pub async fn import_bundle(
        &self,
        source: mpsc::Receiver<Bytes>,
    ) -> Result<ImportSummary, ImportFailure> {
        let started = std::time::Instant::now();
        let lease = Arc::new(
            self.worker()
                .lease("cache-import")
                .await
                .map_err(|e| ImportFailure::Node(e.to_string()))?,
        );
        let spool = self
            .spool()
            .map_err(|e| ImportFailure::Node(format!("a file for the bundle's records: {e}")))?;
        let mut importer = Importer {
            worker: self.worker().clone(),
            lease: lease.clone(),
            runtime: Handle::current(),
            records: spool,
            blobs_written: 0,
            blobs_present: 0,
        };
        let read = tokio::task::spawn_blocking(move || {
            read_bundle(ChunkReader::new(source), &mut importer).map(|_| importer)
        })
        .await
        .map_err(|e| ImportFailure::Node(format!("the bundle reader failed: {e}")))?;
        let read_at = started.elapsed();
        let outcome = match read {
            Ok(importer) => self
                .make_visible(importer, &lease)
                .await
                .inspect(|summary| {
                    tracing::info!(
                        records = summary.records_imported,
                        present = summary.records_present,
                        blobs = summary.blobs_written,
                        reading_ms = read_at.as_millis() as u64,
                        unpacking_ms = (started.elapsed() - read_at).as_millis() as u64,
                        "imported a cache bundle"
                    )
                })
                .map_err(ImportFailure::Node),
            // A refusal of this node's (containerd could not take a blob) reads as the bundle's
            // error message, which names it.
            Err(BundleError::Refused(message)) => Err(ImportFailure::Node(message)),
            Err(error) => Err(ImportFailure::Bundle(error.to_string())),
        };
        if let Ok(lease) = Arc::try_unwrap(lease) {
            let _ = lease.release().await;
        }
        outcome
    }

    /// Unpacks each record new to this node and gives it a cache lease (kept in a second spool
    /// as this node will store it), then inserts them all in one transaction; on failure
    /// releases the leases it made.
    async fn make_visible(
        &self,
        importer: Importer,
        lease: &Lease,
    ) -> Result<ImportSummary, String> {
        let mut summary = ImportSummary {
            blobs_written: importer.blobs_written,
            blobs_present: importer.blobs_present,
            ..ImportSummary::default()
        };
        let mut ready = self.spool().map_err(|e| e.to_string())?;
        let mut made = Vec::new();
        let materialized = self
            .materialize_all(importer.records, lease, &mut ready, &mut made, &mut summary)
            .await;
        let inserted = match materialized {
            Ok(()) => self.insert_spooled(ready).await,
            Err(error) => Err(error),
        };
        let present = match inserted {
            Ok(present) => present,
            Err(error) => {
                self.release_leases(&made).await;
                return Err(error);
            }
        };
        // Recorded meanwhile by a build on this node: that one stays.
        self.release(&present).await;
        summary.records_imported = made.len() as u64 - present.len() as u64;
        summary.records_present += present.len() as u64;
        self.grew.notify_one();
        Ok(summary)
    }

    /// Inserts the spooled records in one transaction; returns those a build recorded first.
    async fn insert_spooled(&self, ready: Spool) -> Result<Vec<Record>, String> {
        let store = self.store().clone();
        let records = ready.read().map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            store.insert_absent(records.map(|r| r.map_err(spool_error)))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    async fn materialize_all(
        &self,
        records: Spool,
        lease: &Lease,
        ready: &mut Spool,
        made: &mut Vec<String>,
        summary: &mut ImportSummary,
    ) -> Result<(), String> {
        // Small reads of a local file, buffered: not worth a thread each.
        for record in records.read().map_err(|e| e.to_string())? {
            let record = record.map_err(|e| format!("reading back the bundle's records: {e}"))?;
            if self
                .store()
                .get(&record.key)
                .map_err(|e| e.to_string())?
                .is_some()
            {
                summary.records_present += 1;
                continue;
            }
            let record = self.materialize(record, lease).await?;
            made.push(record.lease.clone());
            ready.push(&record).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn release_leases(&self, leases: &[String]) {
        for lease in leases {
            if let Err(error) = self.worker().delete_cache_lease(lease).await {
                tracing::warn!(%lease, %error, "could not release a cache lease of a failed import");
            }
        }
    }

    /// An empty spool next to the index.
    fn spool(&self) -> std::io::Result<Spool> {
        let dir = self.store().path().parent().unwrap_or(Path::new("."));
        Spool::new(dir)
    }

    /// The record as this node keeps it: its layers unpacked as chain-ID snapshots, a cache
    /// lease of its own holding them and its blobs.
    async fn materialize(&self, record: Record, lease: &Lease) -> Result<Record, String> {
        let what = format!("{} ({})", record.key, record.description);
        let stored = StoredRef::decode(&record.payload).ok_or_else(|| what.clone())?;
        let base = match &stored.base {
            Some(base) => Some(self.base(base).await.ok_or_else(|| {
                format!(
                    "record {what}: its base image {} is not in the bundle",
                    base.name
                )
            })?),
            None => None,
        };
        let layers = stored
            .layers_on(base.as_deref())
            .ok_or_else(|| format!("record {what}: its layers do not decode"))?;
        let blobs: Vec<_> = layers.iter().map(|l| l.to_blob()).collect();
        self.unpack_record(record, &stored, &blobs, Vec::new(), lease)
            .await
    }
}

fn spool_error(error: std::io::Error) -> cachestore::Error {
    cachestore::Error::Io {
        path: "the import's record spool".into(),
        source: error,
    }
}
