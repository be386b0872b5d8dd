//! GC over a 100,000-record index: planning (read-only), a full collection (plan + sweep of
//! every record in batches of 1,000), and start-up reconciliation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod cache_common;

use std::collections::HashSet;
use std::time::Duration;

use cache_common::{copy_of, index_with};
use cachestore::gc::{self, PlanContext};
use cachestore::usage::Marks;
use cachestore::{DiskStats, PruneRule, Store};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const RECORDS: u64 = 100_000;

fn ctx(marks: &Marks) -> PlanContext<'_> {
    PlanContext {
        now_ms: 1_800_000_000_000,
        disk: DiskStats {
            total: 100 << 30,
            free: 10 << 30,
        },
        marks,
    }
}

fn all() -> PruneRule {
    PruneRule {
        all: true,
        ..Default::default()
    }
}

fn gc_bench(c: &mut Criterion) {
    let src = index_with(RECORDS);
    let marks = Marks::default();
    let mut group = c.benchmark_group("gc");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    let store = Store::open(&src).expect("open");
    let half = PruneRule {
        max_used_space: store.total_size().expect("size") / 2,
        ..Default::default()
    };
    group.bench_function("plan_100k_all", |b| {
        b.iter(|| gc::plan(&store, &[all()], &ctx(&marks)).expect("plan"))
    });
    group.bench_function("plan_100k_to_half_size", |b| {
        b.iter(|| gc::plan(&store, std::slice::from_ref(&half), &ctx(&marks)).expect("plan"))
    });
    let snapshots: HashSet<String> = store
        .records()
        .expect("records")
        .into_iter()
        .map(|r| r.snapshot)
        .collect();
    let leases: HashSet<String> = (0..1000).map(|i| format!("orphan-{i}")).collect();
    group.bench_function("reconcile_100k", |b| {
        b.iter(|| store.reconcile(&snapshots, &leases).expect("reconcile"))
    });
    drop(store);

    group.bench_function("collect_100k_all", |b| {
        b.iter_batched(
            || Store::open(copy_of(&src, "gc-copy.db")).expect("open copy"),
            |store| {
                let swept = gc::collect(&store, &[all()], &ctx(&marks), |_| {}).expect("gc");
                assert_eq!(swept.removed, RECORDS);
                store
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, gc_bench);
criterion_main!(benches);
