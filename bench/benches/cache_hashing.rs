//! Hashing throughput of `local://` sources (`cachestore::tree::tree_digest`), page cache warm:
//! many small files (a source tree) and a few large ones (artifacts), on 1 thread and on all.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::path::Path;

use cachestore::tree::{tree_digest, Selection, TreeOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// `files` files of `size` bytes spread over directories of 100.
fn make_tree(root: &Path, files: usize, size: usize) -> u64 {
    let mut data = vec![0u8; size];
    for i in 0..files {
        let dir = root.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (j, b) in data.iter_mut().enumerate() {
            *b = (i * 31 + j * 7) as u8;
        }
        std::fs::write(dir.join(format!("f{i}")), &data).expect("write");
    }
    (files * size) as u64
}

fn hashing(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("hash_local_source");
    group.sample_size(10);
    for (name, files, size) in [
        ("small_10k_x_4KiB", 10_000, 4 << 10),
        ("large_8_x_32MiB", 8, 32 << 20),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = make_tree(dir.path(), files, size);
        group.throughput(Throughput::Bytes(bytes));
        for t in [1, threads] {
            let opts = TreeOptions { threads: t };
            group.bench_function(format!("{name}/{t}_threads"), |b| {
                b.iter(|| {
                    tree_digest(dir.path(), &opts, |_, _| Selection::Include).expect("digest")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
