//! `du`: the records with what the daemon knows about their use, and the record graph (parent
//! links) that `du` and GC reason over.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::filter::{Filters, Subject};
use crate::key::CacheKey;
use crate::record::{Record, RecordKind};
use crate::store::Store;

/// What the daemon knows about records' use, which the index does not store.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    /// Records a running build holds (their snapshots are mounted or about to be).
    pub in_use: HashSet<CacheKey>,
    /// Records whose snapshots something outside the cache also holds (an image in the node's
    /// store): removing them frees no space.
    pub shared: HashSet<CacheKey>,
}

/// One `du` line, as BuildKit's `UsageRecord` carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    /// The record's key, in hex.
    pub id: String,
    /// Always false: cache records are immutable.
    pub mutable: bool,
    /// Held by a running build, itself or through a record built on it.
    pub in_use: bool,
    /// Bytes of the record's own snapshot.
    pub size: u64,
    /// The parents' ids.
    pub parents: Vec<String>,
    /// Milliseconds since the UNIX epoch.
    pub created_ms: u64,
    /// Milliseconds since the UNIX epoch.
    pub last_used_ms: u64,
    /// How many times the record was hit.
    pub usage_count: u64,
    pub description: String,
    pub record_type: RecordKind,
    /// Also held outside the cache (see [`Marks::shared`]), or built on by more than one record.
    pub shared: bool,
}

/// Every record matching `filters` (and, with an `age_limit`, unused for at least that long
/// before `now_ms`), in key order.
pub fn disk_usage(
    store: &Store,
    marks: &Marks,
    filters: &Filters,
    age_limit: Option<Duration>,
    now_ms: u64,
) -> Result<Vec<UsageRecord>> {
    store.flush()?;
    let graph = Graph::new(store.records()?, marks);
    let cutoff = age_limit.map(|a| now_ms.saturating_sub(a.as_millis() as u64));
    let mut out = Vec::new();
    for (i, r) in graph.records.iter().enumerate() {
        let in_use = graph.in_use[i];
        let shared = graph.shared[i] || graph.children[i].len() > 1;
        let subject = Subject {
            record: r,
            in_use,
            shared,
        };
        if !filters.matches(&subject) || cutoff.is_some_and(|c| r.last_used_ms > c) {
            continue;
        }
        out.push(usage_record(r, in_use, shared));
    }
    Ok(out)
}

/// The `du` line of `r`.
pub fn usage_record(r: &Record, in_use: bool, shared: bool) -> UsageRecord {
    UsageRecord {
        id: r.key.to_hex(),
        mutable: false,
        in_use,
        size: r.size,
        parents: r.parents.iter().map(CacheKey::to_hex).collect(),
        created_ms: r.created_ms,
        last_used_ms: r.last_used_ms,
        usage_count: r.hit_count,
        description: r.describe(),
        record_type: r.kind,
        shared,
    }
}

/// The records as a graph: children by index, and the use marks spread the way BuildKit spreads
/// them (in use: to ancestors, since a parent's snapshot is under its child's; shared: to
/// ancestors, since an image holding a snapshot holds its parents).
pub(crate) struct Graph {
    pub records: Vec<Record>,
    pub index: HashMap<CacheKey, usize>,
    /// Distinct children of each record, by index.
    pub children: Vec<Vec<usize>>,
    /// Distinct parents present in the index, by index.
    pub parents: Vec<Vec<usize>>,
    pub in_use: Vec<bool>,
    pub shared: Vec<bool>,
}

impl Graph {
    pub fn new(records: Vec<Record>, marks: &Marks) -> Graph {
        let index: HashMap<CacheKey, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.key, i))
            .collect();
        let mut parents = vec![Vec::new(); records.len()];
        let mut children = vec![Vec::new(); records.len()];
        for (i, r) in records.iter().enumerate() {
            for p in &r.parents {
                match index.get(p) {
                    Some(&pi) if pi != i && !parents[i].contains(&pi) => {
                        parents[i].push(pi);
                        children[pi].push(i);
                    }
                    _ => {}
                }
            }
        }
        let mut graph = Graph {
            in_use: vec![false; records.len()],
            shared: vec![false; records.len()],
            records,
            index,
            children,
            parents,
        };
        graph.in_use = graph.spread_up(&marks.in_use);
        graph.shared = graph.spread_up(&marks.shared);
        graph
    }

    /// Marks the records in `keys` and all their ancestors.
    fn spread_up(&self, keys: &HashSet<CacheKey>) -> Vec<bool> {
        let mut marked = vec![false; self.records.len()];
        let mut stack: Vec<usize> = keys
            .iter()
            .filter_map(|k| self.index.get(k).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut marked[i], true) {
                stack.extend(self.parents[i].iter().copied());
            }
        }
        marked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn rec(n: u8, parents: &[u8], size: u64, used: u64) -> Record {
        Record {
            key: CacheKey::from_bytes([n; 32]),
            snapshot: format!("snap-{n}"),
            lease: format!("lease-{n}"),
            size,
            created_ms: used,
            last_used_ms: used,
            parents: parents
                .iter()
                .map(|p| CacheKey::from_bytes([*p; 32]))
                .collect(),
            description: format!("step {n}"),
            ..Default::default()
        }
    }

    fn store(records: &[Record]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("cache.db")).unwrap();
        store.insert_many(records).unwrap();
        (dir, store)
    }

    fn key(n: u8) -> CacheKey {
        CacheKey::from_bytes([n; 32])
    }

    #[test]
    fn in_use_and_shared_spread_to_ancestors() {
        // 1 <- 2 <- 3, 1 <- 4
        let (_d, s) = store(&[
            rec(1, &[], 10, 1),
            rec(2, &[1], 20, 2),
            rec(3, &[2], 30, 3),
            rec(4, &[1], 40, 4),
        ]);
        let marks = Marks {
            in_use: [key(3)].into(),
            shared: [key(2)].into(),
        };
        let du = disk_usage(&s, &marks, &Filters::default(), None, 10).unwrap();
        let by_id: HashMap<_, _> = du.iter().map(|u| (u.id.clone(), u)).collect();
        let u = |n: u8| by_id[&key(n).to_hex()];
        assert!(u(1).in_use && u(2).in_use && u(3).in_use && !u(4).in_use);
        assert!(
            u(1).shared,
            "two children, and an ancestor of a shared record"
        );
        assert!(u(2).shared && !u(3).shared && !u(4).shared);
        assert_eq!(u(3).parents, vec![key(2).to_hex()]);
        assert_eq!(u(3).size, 30);
        assert_eq!(u(3).description, "step 3");
        assert!(!u(3).mutable);
    }

    #[test]
    fn filters_and_age_limit() {
        let mut local = rec(5, &[], 1, 100);
        local.kind = RecordKind::SourceLocal;
        let (_d, s) = store(&[rec(1, &[], 10, 1000), local]);
        let f = Filters::parse(&["type==source.local"]).unwrap();
        let du = disk_usage(&s, &Marks::default(), &f, None, 2000).unwrap();
        assert_eq!(du.len(), 1);
        assert_eq!(du[0].record_type, RecordKind::SourceLocal);
        let old = disk_usage(
            &s,
            &Marks::default(),
            &Filters::default(),
            Some(Duration::from_millis(1500)),
            2000,
        )
        .unwrap();
        assert_eq!(old.len(), 1, "only the record unused since 500 ms");
        assert_eq!(old[0].id, key(5).to_hex());
        let du = disk_usage(
            &s,
            &Marks::default(),
            &Filters::parse(&["inuse"]).unwrap(),
            None,
            0,
        )
        .unwrap();
        assert!(du.is_empty());
    }

    #[test]
    fn hits_show_in_usage() {
        let (_d, s) = store(&[rec(1, &[], 10, 1)]);
        s.touch(&key(1), 50).unwrap();
        s.touch(&key(1), 40).unwrap();
        let du = disk_usage(&s, &Marks::default(), &Filters::default(), None, 60).unwrap();
        assert_eq!((du[0].usage_count, du[0].last_used_ms), (2, 50));
    }
}
