//! Lookup latency in a 1,000,000-record index: criterion's estimate of one `Store::get`, plus
//! p50/p99/p99.9 of 200,000 individually timed lookups of uniformly random keys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod cache_common;

use std::hint::black_box;
use std::time::Instant;

use cache_common::{index_with, key, quantile};
use cachestore::Store;
use criterion::{criterion_group, criterion_main, Criterion};

const RECORDS: u64 = 1_000_000;

/// A cheap deterministic generator (xorshift) for key indices.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn percentiles(store: &Store) {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    let keys: Vec<_> = (0..200_000)
        .map(|_| key(next(&mut state) % RECORDS))
        .collect();
    let mut ns = Vec::with_capacity(keys.len());
    for k in &keys {
        let t = Instant::now();
        let r = store.get(k).expect("get");
        ns.push(t.elapsed().as_nanos() as u64);
        assert!(black_box(r).is_some());
    }
    ns.sort_unstable();
    eprintln!(
        "lookup at {RECORDS} records over {} random keys: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        ns.len(),
        quantile(&ns, 0.50) as f64 / 1e3,
        quantile(&ns, 0.99) as f64 / 1e3,
        quantile(&ns, 0.999) as f64 / 1e3,
        *ns.last().unwrap_or(&0) as f64 / 1e3,
    );
}

fn lookup(c: &mut Criterion) {
    let store = Store::open(index_with(RECORDS)).expect("open");
    percentiles(&store);
    let mut state = 0x2545_f491_4f6c_dd1d;
    c.bench_function("lookup_1m_hit", |b| {
        b.iter(|| store.get(&key(next(&mut state) % RECORDS)).expect("get"))
    });
    c.bench_function("lookup_1m_miss", |b| {
        b.iter(|| {
            store
                .get(&key(RECORDS + next(&mut state) % RECORDS))
                .expect("get")
        })
    });
}

criterion_group!(benches, lookup);
criterion_main!(benches);
