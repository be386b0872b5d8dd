//! What the worker counts for the daemon's metrics, read at each scrape: the layer blobs it wrote
//! into containerd's content store (by compression), and the containerd calls that failed (by
//! gRPC service, counted by [`crate::ContainerdChannel`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::Compression;

/// The services the worker calls, listed at 0 from the start (a series that appears only with
/// its first error hides that increase from Prometheus' `rate`).
const SERVICES: [&str; 7] = [
    "containers",
    "content",
    "diff",
    "images",
    "leases",
    "snapshots",
    "tasks",
];

/// The worker's counters; shared by its handle and its channel.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// By [`Compression`]: uncompressed, gzip, zstd.
    layers: [LayerCounter; 3],
    containerd_errors: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct LayerCounter {
    blobs: AtomicU64,
    bytes: AtomicU64,
}

/// Layer blobs of one compression the worker wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayersWritten {
    pub compression: Compression,
    pub blobs: u64,
    pub bytes: u64,
}

/// The worker's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// One entry per compression, zeros included.
    pub layers_written: Vec<LayersWritten>,
    /// Failed containerd calls by service (`images`, `content`, ...): every service the worker
    /// calls, zeros included, and any other that failed.
    pub containerd_errors: BTreeMap<String, u64>,
}

const COMPRESSIONS: [Compression; 3] = [
    Compression::Uncompressed,
    Compression::Gzip,
    Compression::Zstd,
];

fn slot(compression: Compression) -> usize {
    match compression {
        Compression::Uncompressed => 0,
        Compression::Gzip => 1,
        Compression::Zstd => 2,
    }
}

impl WorkerStats {
    /// A layer blob of `bytes` bytes was written into the content store.
    pub(crate) fn layer_written(&self, compression: Compression, bytes: i64) {
        let counter = &self.layers[slot(compression)];
        counter.blobs.fetch_add(1, Ordering::Relaxed);
        counter
            .bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(0), Ordering::Relaxed);
    }

    /// A call on containerd's `service` failed.
    pub(crate) fn containerd_error(&self, service: &str) {
        *self
            .containerd_errors
            .lock()
            .entry(service.to_string())
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let layers_written = COMPRESSIONS
            .iter()
            .map(|&compression| {
                let counter = &self.layers[slot(compression)];
                LayersWritten {
                    compression,
                    blobs: counter.blobs.load(Ordering::Relaxed),
                    bytes: counter.bytes.load(Ordering::Relaxed),
                }
            })
            .collect();
        let mut containerd_errors: BTreeMap<String, u64> =
            SERVICES.iter().map(|s| (s.to_string(), 0)).collect();
        for (service, count) in self.containerd_errors.lock().iter() {
            containerd_errors.insert(service.clone(), *count);
        }
        StatsSnapshot {
            layers_written,
            containerd_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_lists_every_compression_and_known_service() {
        let stats = WorkerStats::default();
        stats.layer_written(Compression::Gzip, 100);
        stats.layer_written(Compression::Gzip, 20);
        stats.containerd_error("tasks");
        stats.containerd_error("introspection");
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.layers_written.len(), 3);
        let gzip = snapshot.layers_written[1];
        assert_eq!(
            (gzip.compression, gzip.blobs, gzip.bytes),
            (Compression::Gzip, 2, 120)
        );
        assert_eq!(snapshot.layers_written[0].blobs, 0);
        assert_eq!(snapshot.containerd_errors["tasks"], 1);
        assert_eq!(snapshot.containerd_errors["introspection"], 1);
        assert_eq!(snapshot.containerd_errors["images"], 0);
    }
}
