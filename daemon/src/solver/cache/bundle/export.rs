//! Export: the selected records and the blobs they need, written as a bundle into a channel.

use std::collections::HashSet;

use bytes::Bytes;
use cachestore::bundle::{BlobHeader, BundleHeader, BundleWriter};
use cachestore::filter::Subject;
use cachestore::{CacheKey, Filters, Record};
use tokio::sync::mpsc;

use super::ChunkWriter;
use crate::solver::cache::index::{now_ms, CacheIndex};
use crate::solver::result::Layer;
use crate::worker::cache_leases::CacheResources;
use crate::worker::Lease;

/// What sending to the bundle writer reports once it stopped (its own error says why).
const WRITER_GONE: &str = "the bundle writer stopped";

/// Records read from the index at a time.
const PAGE: usize = 256;

/// What an export sent.
#[derive(Debug, Default)]
pub struct ExportSummary {
    pub records: u64,
    pub blobs: u64,
    /// Records selected but left out, each with the reason.
    pub skipped: Vec<String>,
}

/// A parsed [`Selection`].
struct Selected {
    filters: Filters,
    /// Sorted.
    keys: Option<Vec<CacheKey>>,
}

/// What the writing thread is handed, in bundle order.
enum Item {
    /// A blob's header, then its bytes as they are read from containerd.
    Blob(BlobHeader, mpsc::Receiver<Vec<u8>>),
    Record(Box<Record>),
}

/// Which records an export carries.
#[derive(Debug, Default)]
pub struct Selection {
    /// `du`'s filters (every record when empty).
    pub filters: Vec<String>,
    /// Only these records (one build's), when given.
    pub keys: Option<Vec<CacheKey>>,
}

impl CacheIndex {
    /// Writes the records `selection` selects and their blobs as one bundle into `sink`.
    pub async fn export_bundle(
        &self,
        selection: Selection,
        sink: mpsc::Sender<Bytes>,
    ) -> Result<ExportSummary, String> {
        let filters = Filters::parse(&selection.filters).map_err(|e| e.to_string())?;
        let selected = Selected {
            filters,
            keys: selection.keys.map(|mut keys| {
                keys.sort();
                keys
            }),
        };
        let lease = self
            .worker()
            .lease("cache-export")
            .await
            .map_err(|e| e.to_string())?;
        let (items, received) = mpsc::channel(1);
        let producer = format!("nodekitd {}", env!("CARGO_PKG_VERSION"));
        let writer = tokio::task::spawn_blocking(move || write_bundle(received, sink, &producer));
        let sent = self.send_items(&selected, &lease, items).await;
        let written = writer
            .await
            .map_err(|e| format!("the bundle writer failed: {e}"))?;
        let _ = lease.release().await;
        match (sent, written) {
            (Ok(summary), Ok(())) => Ok(summary),
            // The writer's own error says why it stopped (the client went away, ...).
            (Err(error), Err(written)) if error == WRITER_GONE => {
                Err(format!("writing the bundle: {written}"))
            }
            (Err(error), _) => Err(error),
            (Ok(_), Err(written)) => Err(format!("writing the bundle: {written}")),
        }
    }

    /// The next page of records after `after` that `filters` select (empty: no more).
    async fn next_selected(
        &self,
        selected: &Selected,
        after: &mut Option<CacheKey>,
    ) -> Result<Vec<Record>, String> {
        let filters = &selected.filters;
        loop {
            let page = match &selected.keys {
                None => self.page_after(*after).await?,
                Some(keys) => self.page_of(keys, *after)?,
            };
            let Some(last) = page.last() else {
                return Ok(Vec::new());
            };
            *after = Some(last.key);
            let selected: Vec<Record> = page
                .into_iter()
                .filter(|record| {
                    filters.matches(&Subject {
                        record,
                        in_use: false,
                        shared: false,
                    })
                })
                .collect();
            if !selected.is_empty() {
                return Ok(selected);
            }
        }
    }

    /// The index's next page of records after `after`.
    async fn page_after(&self, after: Option<CacheKey>) -> Result<Vec<Record>, String> {
        let store = self.store().clone();
        tokio::task::spawn_blocking(move || store.records_after(after.as_ref(), PAGE))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The next page of the records under `keys` (sorted) after `after`, of those the index
    /// has.
    fn page_of(&self, keys: &[CacheKey], after: Option<CacheKey>) -> Result<Vec<Record>, String> {
        let start = after.map_or(0, |after| keys.partition_point(|k| *k <= after));
        let mut page = Vec::new();
        for key in &keys[start..] {
            if let Some(record) = self.store().get(key).map_err(|e| e.to_string())? {
                page.push(record);
                if page.len() == PAGE {
                    break;
                }
            }
        }
        Ok(page)
    }

    /// Hands each record to the writer after its blobs; stops at the first failure to read
    /// a blob that was announced (the bundle cannot be completed then).
    async fn send_items(
        &self,
        selected: &Selected,
        lease: &Lease,
        items: mpsc::Sender<Item>,
    ) -> Result<ExportSummary, String> {
        let mut summary = ExportSummary::default();
        let mut sent: HashSet<String> = HashSet::new();
        let mut after = None;
        loop {
            let page = self.next_selected(selected, &mut after).await?;
            if page.is_empty() {
                break;
            }
            for record in page {
                self.send_record(record, lease, &items, &mut sent, &mut summary)
                    .await?;
            }
        }
        Ok(summary)
    }

    /// Hands `record` to the writer after those of its blobs not sent yet; stops at the first
    /// failure to read a blob that was announced (the bundle cannot be completed then).
    async fn send_record(
        &self,
        record: Record,
        lease: &Lease,
        items: &mpsc::Sender<Item>,
        sent: &mut HashSet<String>,
        summary: &mut ExportSummary,
    ) -> Result<(), String> {
        let blobs = match self.blobs_of(&record, lease).await {
            Ok(blobs) => blobs,
            Err(reason) => {
                summary
                    .skipped
                    .push(format!("{} ({}): {reason}", record.key, record.description));
                return Ok(());
            }
        };
        for blob in blobs {
            if !sent.insert(blob.digest.clone()) {
                continue;
            }
            let (chunks, received) = mpsc::channel(4);
            let digest = blob.digest.clone();
            items
                .send(Item::Blob(blob, received))
                .await
                .map_err(|_| WRITER_GONE.to_string())?;
            self.worker()
                .read_blob_into(&digest, chunks)
                .await
                .map_err(|e| format!("reading blob {digest}: {e}"))?;
            summary.blobs += 1;
        }
        items
            .send(Item::Record(Box::new(record)))
            .await
            .map_err(|_| WRITER_GONE.to_string())?;
        summary.records += 1;
        Ok(())
    }

    /// The blobs `record`'s result needs, each in the content store (a step's layer is
    /// written there from its snapshot under `lease` if nothing wrote it yet).
    async fn blobs_of(&self, record: &Record, lease: &Lease) -> Result<Vec<BlobHeader>, String> {
        let (stored, layers) = self.stored_layers(record).await?;
        for layer in &layers {
            if let Layer::Built(built) = layer {
                self.worker()
                    .ensure_layer_blob(lease, &built.chain_id, &built.blob)
                    .await
                    .map_err(|e| format!("writing its layer {}: {e}", built.blob.digest))?;
            }
        }
        // Held by the export's lease before they are read: a prune meanwhile may release the
        // record's own lease, and the bundle must not lose a blob it announced.
        let blobs = stored.blobs_with_media_types();
        let held = CacheResources {
            snapshot: None,
            blobs: blobs.iter().map(|(digest, _)| digest.clone()).collect(),
        };
        self.worker()
            .add_to_lease(lease.id(), &held)
            .await
            .map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for (digest, media_type) in blobs {
            let size = self
                .worker()
                .blob_size(&digest)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("blob {digest} is not in containerd's content store"))?;
            headers.push(BlobHeader {
                digest,
                media_type,
                size,
            });
        }
        Ok(headers)
    }
}

/// The writing thread: the bundle's sections in the order they arrive.
fn write_bundle(
    mut items: mpsc::Receiver<Item>,
    sink: mpsc::Sender<Bytes>,
    producer: &str,
) -> std::io::Result<()> {
    let header = BundleHeader::new(producer, now_ms());
    let mut writer = BundleWriter::new(ChunkWriter::new(sink), &header)?;
    while let Some(item) = items.blocking_recv() {
        match item {
            Item::Blob(header, chunks) => {
                writer.blob(&header, &mut super::ChunkReader::new(chunks))?
            }
            Item::Record(record) => writer.record(&record)?,
        }
    }
    writer.finish()?;
    Ok(())
}
