//! Durability: a writer killed with SIGKILL in the middle of its writes leaves an index that
//! opens (quickly) and holds every record whose insert had returned.
//!
//! The test re-runs its own binary as the writer: `writer_child` does nothing unless
//! `CACHESTORE_CRASH_WRITER` names an index file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachestore::{CacheKey, KeyEncoder, Record, RecordKind, Store};

const ENV: &str = "CACHESTORE_CRASH_WRITER";

fn key(n: u64) -> CacheKey {
    let mut e = KeyEncoder::new("test");
    e.u64("n", n);
    e.finish()
}

fn record(n: u64) -> Record {
    Record {
        key: key(n),
        snapshot: format!("nodekit/snap-{n}"),
        lease: format!("nodekit-cache-{n}"),
        size: n * 7,
        created_ms: n,
        last_used_ms: n,
        platform: "linux/amd64".into(),
        kind: RecordKind::Regular,
        description: format!("RUN step {n}"),
        parents: if n.is_multiple_of(10) {
            vec![]
        } else {
            vec![key(n - 1)]
        },
        ..Default::default()
    }
}

/// The writer: inserts batches forever, printing `committed N` after each insert returns.
#[test]
fn writer_child() {
    let Ok(path) = std::env::var(ENV) else {
        return;
    };
    let store = Store::open(&path).unwrap();
    let mut n = 0u64;
    loop {
        let batch: Vec<Record> = (n..n + 20).map(record).collect();
        store.insert_many(&batch).unwrap();
        n += 20;
        println!("committed {n}");
    }
}

fn spawn_writer(path: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env(ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the child's output until it reports at least `want` committed records.
fn wait_for_commits(output: &mut impl BufRead, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed = 0;
    for line in output.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.trim().parse().unwrap();
            if committed >= want {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the writer is too slow");
    }
    committed
}

#[test]
fn records_survive_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    for round in 1..=3u64 {
        let mut child = spawn_writer(&path);
        // Keep the pipe open until the kill, so the writer is still writing when it dies.
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let committed = wait_for_commits(&mut output, 400 * round);
        // Let the writer get into its next transaction (a different point each round).
        std::thread::sleep(Duration::from_micros(round * 700));
        child.kill().unwrap(); // SIGKILL: no destructor, no clean close
        child.wait().unwrap();
        drop(output);

        let started = Instant::now();
        let store = Store::open(&path).unwrap();
        let opened_in = started.elapsed();
        assert!(
            opened_in < Duration::from_secs(2),
            "reopen took {opened_in:?}"
        );
        // Records committed after the last line was read may be there too; all must be whole.
        for n in 0..committed {
            let got = store.get(&key(n)).unwrap();
            assert_eq!(got.as_ref(), Some(&record(n)), "record {n} of {committed}");
        }
        let all = store.records().unwrap();
        assert!(all.len() as u64 >= committed);
        assert_eq!(store.len().unwrap(), all.len() as u64);
        let bytes: u64 = all.iter().map(|r| r.size).sum();
        assert_eq!(
            store.total_size().unwrap(),
            bytes,
            "the byte total matches the records"
        );
        eprintln!(
            "round {round}: {committed} committed, {} on disk, reopened in {opened_in:?}",
            all.len()
        );
        // The next round starts a writer over the same file, from record 0 again.
    }
}
