//! Opening a 1,000,000-record index (after a clean close): `Store::open` until it can answer,
//! and a scan of every record (what nodekitd's start does once, reconciling with containerd).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod cache_common;

use std::time::Instant;

use cache_common::{index_with, key};
use cachestore::Store;
use criterion::{criterion_group, criterion_main, Criterion};

fn open(c: &mut Criterion) {
    let path = index_with(1_000_000);
    let t = Instant::now();
    let store = Store::open(&path).expect("open");
    eprintln!(
        "first open (cold redb cache): {:.1?}, {} records",
        t.elapsed(),
        store.len().expect("len")
    );
    drop(store);
    let mut group = c.benchmark_group("open");
    group.sample_size(20);
    group.bench_function("open_1m", |b| {
        b.iter(|| {
            let store = Store::open(&path).expect("open");
            assert!(store.get(&key(123_456)).expect("get").is_some());
            store
        })
    });
    group.sample_size(10);
    group.bench_function("open_and_scan_1m", |b| {
        b.iter(|| {
            let store = Store::open(&path).expect("open");
            let mut records = 0;
            store.checked_scan(|_| records += 1).expect("scan");
            records
        })
    });
    group.finish();
}

criterion_group!(benches, open);
criterion_main!(benches);
