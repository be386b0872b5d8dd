use std::collections::HashSet;
use std::time::Duration;

use super::plan::keep_bytes;
use super::*;
use crate::record::RecordKind;
use crate::usage::Marks;

fn key(n: u32) -> CacheKey {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    CacheKey::from_bytes(b)
}

/// Record `n`, last used at `used` ms, of `size` bytes.
fn rec(n: u32, parents: &[u32], size: u64, used: u64) -> Record {
    Record {
        key: key(n),
        snapshot: format!("snap-{n}"),
        lease: format!("lease-{n}"),
        size,
        created_ms: used,
        last_used_ms: used,
        parents: parents.iter().map(|p| key(*p)).collect(),
        ..Default::default()
    }
}

fn store(records: &[Record]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("cache.db")).unwrap();
    s.insert_many(records).unwrap();
    (dir, s)
}

fn planned(s: &Store, rules: &[PruneRule], marks: &Marks, now_ms: u64) -> Vec<u32> {
    let ctx = PlanContext {
        now_ms,
        disk: DiskStats::default(),
        marks,
    };
    plan(s, rules, &ctx)
        .unwrap()
        .entries
        .iter()
        .map(|(k, _)| u32::from_be_bytes(k.as_bytes()[..4].try_into().unwrap()))
        .collect()
}

fn all() -> PruneRule {
    PruneRule {
        all: true,
        ..Default::default()
    }
}

#[test]
fn least_recently_used_first_children_before_parents() {
    // Chain 1 <- 2 <- 3 (1 is oldest), and a lone 4 used between 2 and 3.
    let (_d, s) = store(&[
        rec(1, &[], 10, 100),
        rec(2, &[1], 10, 200),
        rec(3, &[2], 10, 400),
        rec(4, &[], 10, 300),
    ]);
    assert_eq!(
        planned(&s, &[all()], &Marks::default(), 1000),
        vec![4, 3, 2, 1]
    );
}

#[test]
fn in_use_records_and_their_ancestors_stay() {
    let (_d, s) = store(&[rec(1, &[], 10, 1), rec(2, &[1], 10, 2), rec(3, &[], 10, 3)]);
    let marks = Marks {
        in_use: [key(2)].into(),
        ..Default::default()
    };
    assert_eq!(planned(&s, &[all()], &marks, 10), vec![3]);
}

#[test]
fn parents_of_kept_records_stay() {
    // 2 is recent and kept by keep_duration; its parent 1 is old but must stay.
    let (_d, s) = store(&[
        rec(1, &[], 10, 1),
        rec(2, &[1], 10, 900),
        rec(3, &[], 10, 2),
    ]);
    let rule = PruneRule {
        keep_duration: Duration::from_millis(500),
        ..all()
    };
    assert_eq!(planned(&s, &[rule], &Marks::default(), 1000), vec![3]);
}

#[test]
fn keep_duration_and_filters() {
    let mut local = rec(1, &[], 10, 1);
    local.kind = RecordKind::SourceLocal;
    let mut cache = rec(2, &[], 10, 2);
    cache.kind = RecordKind::ExecCacheMount;
    let (_d, s) = store(&[local, cache, rec(3, &[], 10, 3), rec(4, &[], 10, 990)]);
    let rule = PruneRule {
        filters: vec!["type==source.local".into(), "type==exec.cachemount".into()],
        ..Default::default()
    };
    assert_eq!(planned(&s, &[rule], &Marks::default(), 1000), vec![1, 2]);
    let rule = PruneRule {
        keep_duration: Duration::from_millis(100),
        ..Default::default()
    };
    assert_eq!(planned(&s, &[rule], &Marks::default(), 1000), vec![1, 2, 3]);
    let rule = PruneRule {
        filters: vec![format!("id=={}", key(3))],
        ..Default::default()
    };
    assert_eq!(planned(&s, &[rule], &Marks::default(), 1000), vec![3]);
}

#[test]
fn internal_frontend_and_shared_need_all() {
    let mut internal = rec(1, &[], 10, 1);
    internal.kind = RecordKind::Internal;
    let mut frontend = rec(2, &[], 10, 2);
    frontend.kind = RecordKind::Frontend;
    let (_d, s) = store(&[internal, frontend, rec(3, &[], 10, 3), rec(4, &[], 10, 4)]);
    let marks = Marks {
        shared: [key(4)].into(),
        ..Default::default()
    };
    assert_eq!(planned(&s, &[PruneRule::default()], &marks, 10), vec![3]);
    assert_eq!(planned(&s, &[all()], &marks, 10), vec![1, 2, 3, 4]);
}

#[test]
fn space_limits_stop_when_under() {
    let records: Vec<Record> = (1..=10).map(|n| rec(n, &[], 100, u64::from(n))).collect();
    let (_d, s) = store(&records);
    let max = PruneRule {
        max_used_space: 650,
        ..Default::default()
    };
    // 1000 bytes; removal stops once under 650: 4 records go (1000 -> 600).
    assert_eq!(
        planned(&s, &[max], &Marks::default(), 100),
        vec![1, 2, 3, 4]
    );
    let reserved = PruneRule {
        max_used_space: 100,
        reserved_space: 800,
        ..Default::default()
    };
    assert_eq!(
        planned(&s, &[reserved], &Marks::default(), 100),
        vec![1, 2],
        "never below reserved"
    );
}

#[test]
fn min_free_space_frees_the_shortfall() {
    let records: Vec<Record> = (1..=10).map(|n| rec(n, &[], 100, u64::from(n))).collect();
    let (_d, s) = store(&records);
    let rule = PruneRule {
        min_free_space: 1000,
        ..Default::default()
    };
    let ctx = |free| PlanContext {
        now_ms: 100,
        disk: DiskStats {
            total: 10_000,
            free,
        },
        marks: &MARKS,
    };
    static MARKS: std::sync::LazyLock<Marks> = std::sync::LazyLock::new(Marks::default);
    let p = plan(&s, std::slice::from_ref(&rule), &ctx(750)).unwrap();
    assert_eq!(p.entries.len(), 3, "250 short: keep 750 of 1000, so 3 go");
    assert_eq!(p.bytes, 300);
    let p = plan(&s, std::slice::from_ref(&rule), &ctx(5000)).unwrap();
    assert!(p.entries.is_empty(), "enough free space: nothing goes");
}

#[test]
fn rules_apply_in_order_and_see_earlier_removals() {
    let records: Vec<Record> = (1..=6).map(|n| rec(n, &[], 100, u64::from(n))).collect();
    let (_d, s) = store(&records);
    let first = PruneRule {
        filters: vec![format!("id=={}", key(6))],
        ..Default::default()
    };
    let second = PruneRule {
        max_used_space: 450,
        ..Default::default()
    };
    assert_eq!(
        planned(&s, &[first, second], &Marks::default(), 10),
        vec![6, 1]
    );
}

#[test]
fn keep_bytes_mirrors_buildkitd() {
    let disk = |free| DiskStats { total: 0, free };
    let r = |max, reserved, min_free| PruneRule {
        max_used_space: max,
        reserved_space: reserved,
        min_free_space: min_free,
        ..Default::default()
    };
    assert_eq!(keep_bytes(1000, disk(0), &r(0, 0, 0)), 0);
    assert_eq!(keep_bytes(1000, disk(0), &r(600, 0, 0)), 600);
    assert_eq!(keep_bytes(1000, disk(0), &r(600, 800, 0)), 800);
    assert_eq!(keep_bytes(1000, disk(100), &r(0, 0, 300)), 800);
    assert_eq!(keep_bytes(1000, disk(100), &r(700, 0, 300)), 700);
    assert_eq!(keep_bytes(1000, disk(500), &r(0, 0, 300)), 1000);
}

#[test]
fn sweep_removes_in_batches_and_skips_what_changed() {
    let n = MAX_BATCH as u32 + 500;
    let mut records: Vec<Record> = (1..=n).map(|i| rec(i, &[], 1, u64::from(i))).collect();
    records.push(rec(n + 1, &[1], 1, 5000));
    let (_d, s) = store(&records);
    let marks = Marks::default();
    let ctx = PlanContext {
        now_ms: 10_000,
        disk: DiskStats::default(),
        marks: &marks,
    };
    let p = plan(&s, &[all()], &ctx).unwrap();
    assert_eq!(p.entries.len(), n as usize + 1);
    // After planning: 2 is hit, 3 gets in use, and a new record is built on 4.
    s.touch(&key(2), 20_000).unwrap();
    s.insert(&rec(n + 2, &[4], 1, 20_000)).unwrap();
    let mut streamed = Vec::new();
    let swept = sweep(&s, &p, |k| *k == key(3), |r| streamed.push(r.key)).unwrap();
    assert_eq!(swept.skipped, 3);
    assert_eq!(swept.removed, u64::from(n) + 1 - 3);
    assert_eq!(streamed.len() as u64, swept.removed);
    let at = |k: CacheKey| streamed.iter().position(|x| *x == k).unwrap();
    assert!(
        at(key(n + 1)) < at(key(1)),
        "the child goes before its parent"
    );
    let left: HashSet<CacheKey> = s.records().unwrap().iter().map(|r| r.key).collect();
    assert_eq!(left, [key(2), key(3), key(4), key(n + 2)].into());
    let m = s.metrics().snapshot();
    assert_eq!((m.gc_runs, m.gc_records_removed), (1, swept.removed));
}

#[test]
fn collect_plans_and_sweeps() {
    let (_d, s) = store(&[rec(1, &[], 10, 1), rec(2, &[1], 20, 2)]);
    let marks = Marks::default();
    let ctx = PlanContext {
        now_ms: 10,
        disk: DiskStats::default(),
        marks: &marks,
    };
    let mut out = Vec::new();
    let swept = collect(&s, &[all()], &ctx, |r| out.push(r.clone())).unwrap();
    assert_eq!(swept.bytes, 30);
    assert_eq!(
        out.iter().map(|r| r.key).collect::<Vec<_>>(),
        vec![key(2), key(1)]
    );
    assert!(s.is_empty().unwrap());
}

#[test]
fn bad_filters_fail_the_plan() {
    let (_d, s) = store(&[rec(1, &[], 10, 1)]);
    let rule = PruneRule {
        filters: vec!["type==".into()],
        ..Default::default()
    };
    let marks = Marks::default();
    let ctx = PlanContext {
        now_ms: 10,
        disk: DiskStats::default(),
        marks: &marks,
    };
    assert!(plan(&s, &[rule], &ctx).is_err());
}
