//! Counters of the cache: hits and misses by op kind, records and bytes held, GC runs and bytes
//! reclaimed. Lock-free atomics; [`Metrics::snapshot`] reads them all.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// The kind of an LLB op, for hit and miss counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum OpKind {
    Source,
    Exec,
    File,
    Merge,
    Diff,
    Build,
}

impl OpKind {
    /// Every kind, in counter order.
    pub const ALL: [OpKind; 6] = [
        OpKind::Source,
        OpKind::Exec,
        OpKind::File,
        OpKind::Merge,
        OpKind::Diff,
        OpKind::Build,
    ];

    /// The kind's lowercase name (as in LLB: `source`, `exec`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Source => "source",
            OpKind::Exec => "exec",
            OpKind::File => "file",
            OpKind::Merge => "merge",
            OpKind::Diff => "diff",
            OpKind::Build => "build",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The cache's counters. Shared by reference; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    hits: [AtomicU64; 6],
    misses: [AtomicU64; 6],
    records: AtomicU64,
    bytes: AtomicU64,
    gc_runs: AtomicU64,
    gc_records_removed: AtomicU64,
    gc_bytes_reclaimed: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Hits by op kind, in [`OpKind::ALL`] order.
    pub hits: Vec<(OpKind, u64)>,
    /// Misses by op kind, in [`OpKind::ALL`] order.
    pub misses: Vec<(OpKind, u64)>,
    /// Records in the index.
    pub records: u64,
    /// Bytes the records' snapshots use.
    pub bytes: u64,
    /// GC runs (sweeps) completed.
    pub gc_runs: u64,
    /// Records GC removed.
    pub gc_records_removed: u64,
    /// Bytes GC reclaimed.
    pub gc_bytes_reclaimed: u64,
}

impl Metrics {
    /// Counts a cache hit of an op of `kind`.
    pub fn hit(&self, kind: OpKind) {
        self.hits[kind.index()].fetch_add(1, Relaxed);
    }

    /// Counts a cache miss of an op of `kind`.
    pub fn miss(&self, kind: OpKind) {
        self.misses[kind.index()].fetch_add(1, Relaxed);
    }

    /// Sets the record and byte gauges (the store does, after each write).
    pub fn set_size(&self, records: u64, bytes: u64) {
        self.records.store(records, Relaxed);
        self.bytes.store(bytes, Relaxed);
    }

    /// Counts one GC run that removed `records` records of `bytes` bytes.
    pub fn gc_run(&self, records: u64, bytes: u64) {
        self.gc_runs.fetch_add(1, Relaxed);
        self.gc_records_removed.fetch_add(records, Relaxed);
        self.gc_bytes_reclaimed.fetch_add(bytes, Relaxed);
    }

    /// Every counter, read now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let by_kind = |a: &[AtomicU64; 6]| {
            OpKind::ALL
                .iter()
                .map(|k| (*k, a[k.index()].load(Relaxed)))
                .collect()
        };
        MetricsSnapshot {
            hits: by_kind(&self.hits),
            misses: by_kind(&self.misses),
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            gc_runs: self.gc_runs.load(Relaxed),
            gc_records_removed: self.gc_records_removed.load(Relaxed),
            gc_bytes_reclaimed: self.gc_bytes_reclaimed.load(Relaxed),
        }
    }
}

impl MetricsSnapshot {
    /// Hits of `kind`.
    pub fn hits_of(&self, kind: OpKind) -> u64 {
        self.hits
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |x| x.1)
    }

    /// Misses of `kind`.
    pub fn misses_of(&self, kind: OpKind) -> u64 {
        self.misses
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |x| x.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind() {
        let m = Metrics::default();
        m.hit(OpKind::Exec);
        m.hit(OpKind::Exec);
        m.miss(OpKind::Source);
        m.set_size(3, 300);
        m.gc_run(2, 200);
        m.gc_run(0, 0);
        let s = m.snapshot();
        assert_eq!(s.hits_of(OpKind::Exec), 2);
        assert_eq!(s.hits_of(OpKind::File), 0);
        assert_eq!(s.misses_of(OpKind::Source), 1);
        assert_eq!((s.records, s.bytes), (3, 300));
        assert_eq!(
            (s.gc_runs, s.gc_records_removed, s.gc_bytes_reclaimed),
            (2, 2, 200)
        );
        assert_eq!(s.hits.len(), OpKind::ALL.len());
    }

    #[test]
    fn kinds_have_llb_names() {
        let names: Vec<_> = OpKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["source", "exec", "file", "merge", "diff", "build"]);
    }
}
