//! Shared setup of the cache index benchmarks: realistic records and prebuilt index files.
//!
//! Index files are built once and kept under the system temp dir
//! (`nodekit-cachestore-bench/`), since a million inserts take a while; delete the directory to
//! rebuild them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use cachestore::{CacheKey, KeyEncoder, Record, RecordKind, Store};

/// The key of record `n`.
pub fn key(n: u64) -> CacheKey {
    let mut e = KeyEncoder::new("exec");
    e.str_list("args", ["/bin/sh", "-c"]).u64("step", n);
    e.finish().for_output(0)
}

/// Record `n`: chains of 10 (each record's parent is the one before it in its chain).
pub fn record(n: u64) -> Record {
    let k = key(n);
    Record {
        key: k,
        output_index: 0,
        snapshot: format!("nodekit/{}", &k.to_hex()[..32]),
        lease: format!("nodekit-cache-{}", &k.to_hex()[..24]),
        layer: None,
        size: 4096 + (n % 1000) * 1024,
        created_ms: 1_700_000_000_000 + n,
        last_used_ms: 1_700_000_000_000 + n,
        hit_count: n % 5,
        platform: "linux/amd64".into(),
        kind: if n.is_multiple_of(50) {
            RecordKind::SourceLocal
        } else {
            RecordKind::Regular
        },
        description: format!("[stage-{}] RUN make target-{n}", n % 7),
        parents: if n.is_multiple_of(10) {
            vec![]
        } else {
            vec![key(n - 1)]
        },
        // About what the daemon stores for a result a few layers above its base image.
        payload: vec![(n % 251) as u8; 320],
    }
}

fn bench_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("nodekit-cachestore-bench");
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    dir
}

/// An index file holding records `0..count`, built on first use.
pub fn index_with(count: u64) -> PathBuf {
    let path = bench_dir().join(format!("index-v1-{count}.db"));
    let done = path.with_extension("done");
    if done.exists() {
        return path;
    }
    let _ = std::fs::remove_file(&path);
    let started = Instant::now();
    let store = Store::open(&path).expect("create the index");
    for start in (0..count).step_by(10_000) {
        let batch: Vec<Record> = (start..(start + 10_000).min(count)).map(record).collect();
        store.insert_many(&batch).expect("insert");
    }
    drop(store);
    std::fs::write(&done, b"").expect("mark the index built");
    eprintln!(
        "built {} with {count} records in {:.1?} ({} MB)",
        path.display(),
        started.elapsed(),
        std::fs::metadata(&path).map_or(0, |m| m.len() >> 20)
    );
    path
}

/// A private copy of `src` (for benchmarks that change the index).
pub fn copy_of(src: &Path, name: &str) -> PathBuf {
    let dst = bench_dir().join(name);
    std::fs::copy(src, &dst).expect("copy the index");
    dst
}

/// The `q`-quantile of sorted nanoseconds.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
