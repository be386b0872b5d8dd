use super::*;
use crate::record::RecordKind;

fn key(n: u32) -> CacheKey {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    CacheKey::from_bytes(b)
}

fn rec(n: u32, parents: &[u32]) -> Record {
    Record {
        key: key(n),
        snapshot: format!("snap-{n}"),
        lease: format!("lease-{n}"),
        size: u64::from(n) * 10,
        created_ms: u64::from(n),
        last_used_ms: u64::from(n),
        platform: "linux/amd64".into(),
        kind: RecordKind::Regular,
        description: format!("step {n}"),
        parents: parents.iter().map(|p| key(*p)).collect(),
        ..Default::default()
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache.db")).unwrap();
    (dir, store)
}

#[test]
fn the_store_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

#[test]
fn insert_get_len_size() {
    let (_d, s) = open();
    assert!(s.is_empty().unwrap());
    assert_eq!(s.get(&key(1)).unwrap(), None);
    s.insert(&rec(1, &[])).unwrap();
    s.insert_many(&[rec(2, &[1]), rec(3, &[2])]).unwrap();
    assert_eq!(s.get(&key(2)).unwrap(), Some(rec(2, &[1])));
    assert_eq!(s.len().unwrap(), 3);
    assert_eq!(s.total_size().unwrap(), 60);
    let m = s.metrics().snapshot();
    assert_eq!((m.records, m.bytes), (3, 60));
}

#[test]
fn insert_absent_keeps_what_is_there() {
    let (_d, s) = open();
    s.insert(&rec(1, &[])).unwrap();
    let mut newer = rec(1, &[]);
    newer.snapshot = "imported".into();
    let present = s
        .insert_absent(vec![Ok(newer.clone()), Ok(rec(2, &[1]))])
        .unwrap();
    assert_eq!(present, vec![newer]);
    assert_eq!(s.get(&key(1)).unwrap(), Some(rec(1, &[])));
    assert_eq!(s.get(&key(2)).unwrap(), Some(rec(2, &[1])));
    assert_eq!(s.children_of(&key(1)).unwrap(), vec![key(2)]);
    // A failing source stores nothing.
    let failing = vec![Ok(rec(3, &[])), Err(crate::Error::Key("bad".into()))];
    assert!(s.insert_absent(failing).is_err());
    assert_eq!(s.get(&key(3)).unwrap(), None);
}

#[test]
fn records_come_in_pages_in_key_order() {
    let (_d, s) = open();
    s.insert_many(&(1..=7).map(|n| rec(n, &[])).collect::<Vec<_>>())
        .unwrap();
    let keys = |page: Vec<Record>| page.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(
        keys(s.records_after(None, 3).unwrap()),
        [key(1), key(2), key(3)]
    );
    assert_eq!(
        keys(s.records_after(Some(&key(3)), 3).unwrap()),
        [key(4), key(5), key(6)]
    );
    assert_eq!(keys(s.records_after(Some(&key(6)), 3).unwrap()), [key(7)]);
    assert!(s.records_after(Some(&key(7)), 3).unwrap().is_empty());
    // A key that is not there starts the page at the next one.
    s.remove(&[key(4)]).unwrap();
    assert_eq!(
        keys(s.records_after(Some(&key(4)), 2).unwrap()),
        [key(5), key(6)]
    );
}

#[test]
fn replacing_a_record_keeps_indexes_right() {
    let (_d, s) = open();
    s.insert_many(&[rec(1, &[]), rec(9, &[]), rec(2, &[1])])
        .unwrap();
    let mut again = rec(2, &[9]);
    again.snapshot = "other".into();
    again.size = 5;
    s.insert(&again).unwrap();
    assert_eq!(s.total_size().unwrap(), 10 + 90 + 5);
    assert!(s.children_of(&key(1)).unwrap().is_empty());
    assert_eq!(s.children_of(&key(9)).unwrap(), vec![key(2)]);
    assert!(s.records_by_snapshot("snap-2").unwrap().is_empty());
    assert_eq!(s.records_by_snapshot("other").unwrap(), vec![again]);
}

#[test]
fn remove_unlinks_everything() {
    let (_d, s) = open();
    s.insert_many(&[rec(1, &[]), rec(2, &[1]), rec(3, &[1])])
        .unwrap();
    assert_eq!(s.children_of(&key(1)).unwrap(), vec![key(2), key(3)]);
    let removed = s.remove(&[key(2), key(7)]).unwrap();
    assert_eq!(removed, vec![rec(2, &[1])]);
    assert_eq!(s.children_of(&key(1)).unwrap(), vec![key(3)]);
    // Removing a parent drops its child links too.
    s.remove(&[key(1)]).unwrap();
    assert!(s.children_of(&key(1)).unwrap().is_empty());
    assert_eq!(s.len().unwrap(), 1);
    assert_eq!(s.total_size().unwrap(), 30);
}

#[test]
fn remove_if_sees_children() {
    let (_d, s) = open();
    s.insert_many(&[rec(1, &[]), rec(2, &[1])]).unwrap();
    let removed = s
        .remove_if(&[key(1), key(2)], |_, has_children| !has_children)
        .unwrap();
    assert_eq!(removed.len(), 1, "1 had a child when it was looked at");
    assert_eq!(removed[0].key, key(2));
}

#[test]
fn records_by_snapshot_is_exact() {
    let (_d, s) = open();
    let mut a = rec(1, &[]);
    a.snapshot = "abc".into();
    let mut b = rec(2, &[]);
    b.snapshot = "abcd".into();
    let mut c = rec(3, &[]);
    c.snapshot = "abc".into();
    s.insert_many(&[a.clone(), b.clone(), c.clone()]).unwrap();
    assert_eq!(s.records_by_snapshot("abc").unwrap(), vec![a, c]);
    assert_eq!(s.records_by_snapshot("abcd").unwrap(), vec![b]);
    assert!(s.records_by_snapshot("ab").unwrap().is_empty());
}

#[test]
fn touches_are_batched_and_visible() {
    let (d, s) = open();
    s.insert(&rec(1, &[])).unwrap();
    s.touch(&key(1), 100).unwrap();
    s.touch(&key(1), 90).unwrap();
    s.touch(&key(404), 90).unwrap();
    let r = s.get(&key(1)).unwrap().unwrap();
    assert_eq!((r.last_used_ms, r.hit_count), (100, 2));
    s.flush().unwrap();
    let r = s.get(&key(1)).unwrap().unwrap();
    assert_eq!((r.last_used_ms, r.hit_count), (100, 2));
    s.touch(&key(1), 200).unwrap();
    drop(s); // flushes
    let s = Store::open(d.path().join("cache.db")).unwrap();
    let r = s.get(&key(1)).unwrap().unwrap();
    assert_eq!((r.last_used_ms, r.hit_count), (200, 3));
    assert_eq!(s.get(&key(404)).unwrap(), None);
}

#[test]
fn a_full_touch_batch_is_written() {
    let (_d, s) = open();
    let records: Vec<Record> = (0..TOUCH_BATCH as u32 + 5).map(|n| rec(n, &[])).collect();
    s.insert_many(&records).unwrap();
    for r in &records {
        s.touch(&r.key, 1_000_000).unwrap();
    }
    assert!(s.pending.lock().len() < 10, "the batch was flushed");
}

#[test]
fn set_layer() {
    let (_d, s) = open();
    s.insert(&rec(1, &[])).unwrap();
    let layer = LayerDescriptor {
        digest: "sha256:ab".into(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: 77,
    };
    assert!(s.set_layer(&key(1), layer.clone()).unwrap());
    assert!(!s.set_layer(&key(2), layer.clone()).unwrap());
    assert_eq!(s.get(&key(1)).unwrap().unwrap().layer, Some(layer));
}

#[test]
fn scan_and_records() {
    let (_d, s) = open();
    s.insert_many(&[rec(3, &[]), rec(1, &[]), rec(2, &[])])
        .unwrap();
    let keys: Vec<_> = s.records().unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, vec![key(1), key(2), key(3)]);
}

#[test]
fn reconcile_drops_lost_snapshots_and_reports_orphans() {
    let (_d, s) = open();
    s.insert_many(&[rec(1, &[]), rec(2, &[1]), rec(3, &[])])
        .unwrap();
    let existing: HashSet<String> = ["snap-1".to_string(), "snap-3".into()].into();
    let owned: HashSet<String> = ["lease-1", "lease-2", "lease-3", "lease-x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = s.reconcile(&existing, &owned).unwrap();
    assert_eq!(r.dropped, 1);
    assert!(s.get(&key(2)).unwrap().is_none());
    assert!(s.get(&key(1)).unwrap().is_some());
    assert_eq!(
        r.orphan_leases,
        vec!["lease-2".to_string(), "lease-x".into()]
    );
    assert_eq!(s.len().unwrap(), 2);
    assert!(s.children_of(&key(1)).unwrap().is_empty());
}

#[test]
fn readers_see_a_consistent_view_during_writes() {
    let (_d, s) = open();
    let s = std::sync::Arc::new(s);
    s.insert(&rec(1, &[])).unwrap();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            for n in 2..200 {
                s.insert(&rec(n, &[n - 1])).unwrap();
            }
        })
    };
    for _ in 0..200 {
        assert!(s.get(&key(1)).unwrap().is_some());
    }
    writer.join().unwrap();
    assert_eq!(s.len().unwrap(), 199);
}

#[test]
fn reopen_keeps_everything() {
    let (d, s) = open();
    s.insert_many(&[rec(1, &[]), rec(2, &[1])]).unwrap();
    drop(s);
    let s = Store::open(d.path().join("cache.db")).unwrap();
    assert_eq!(s.get(&key(2)).unwrap(), Some(rec(2, &[1])));
    assert_eq!(s.children_of(&key(1)).unwrap(), vec![key(2)]);
    assert_eq!(s.metrics().snapshot().bytes, 30);
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Store::open(dir.path().join("no/such/dir/cache.db"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("cannot open the cache index"), "{e}");
}

#[test]
fn a_second_open_is_refused() {
    let (d, _s) = open();
    let e = Store::open(d.path().join("cache.db")).err().unwrap();
    assert!(e.to_string().contains("cache.db"), "{e}");
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    {
        let s = Store::open(&path).unwrap();
        let records: Vec<Record> = (0..2000).map(|n| rec(n, &[])).collect();
        s.insert_many(&records).unwrap();
    }
    let good = std::fs::read(&path).unwrap();
    // Garbage, truncations, and flipped bytes through the file.
    let mut cases: Vec<Vec<u8>> = vec![b"not a database at all".to_vec(), vec![0; 4096]];
    for cut in [1, 100, 512, 4096, good.len() / 2, good.len() - 1] {
        cases.push(good[..cut].to_vec());
    }
    for at in (0..good.len()).step_by(good.len() / 16 + 1) {
        let mut bad = good.clone();
        for b in &mut bad[at..(at + 64).min(good.len())] {
            *b ^= 0x5a;
        }
        cases.push(bad);
    }
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (i, bytes) in cases.iter().enumerate() {
        std::fs::write(&path, bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| match Store::open(&path) {
            Ok(s) => s.records().map(|r| r.len()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        });
        assert!(outcome.is_ok(), "case {i} panicked");
    }
    std::panic::set_hook(quiet);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    drop(Store::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let e = Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("schema v2") && e.contains("reads v1"), "{e}");
}

#[test]
fn a_corrupt_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    drop(Store::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let bad: &[u8] = &[1, 0xff, 0xff];
        txn.open_table(RECORDS)
            .unwrap()
            .insert(key(5).as_bytes(), bad)
            .unwrap();
        txn.commit().unwrap();
    }
    let s = Store::open(&path).unwrap();
    let e = s.get(&key(5)).unwrap_err().to_string();
    assert!(e.contains("corrupt"), "{e}");
    assert!(s.records().is_err());
}

#[test]
fn reconciling_refuses_a_corrupt_record_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    Store::open(&path).unwrap().insert(&rec(1, &[])).unwrap();
    let none = HashSet::new();
    assert!(Store::open(&path).unwrap().reconcile(&none, &none).is_ok());
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let bad: &[u8] = &[1, 0xff, 0xff];
        txn.open_table(RECORDS)
            .unwrap()
            .insert(key(5).as_bytes(), bad)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let e = store.reconcile(&none, &none).unwrap_err();
    assert!(matches!(e, Error::CorruptFile { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("cache.db") && e.contains("corrupt"), "{e}");
}
