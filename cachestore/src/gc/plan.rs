//! Choosing what GC removes: see [`crate::gc`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::policy::{DiskStats, PruneRule};
use crate::error::Result;
use crate::filter::{Filters, Subject};
use crate::key::CacheKey;
use crate::record::RecordKind;
use crate::store::Store;
use crate::usage::{Graph, Marks};

/// What a plan is made against.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    /// Now, in milliseconds since the UNIX epoch.
    pub now_ms: u64,
    /// The disk the cache lives on (for `min_free_space` and percentages).
    pub disk: DiskStats,
    /// Records in use and records shared outside the cache.
    pub marks: &'a Marks,
}

/// The records chosen, in removal order (children before parents), each with the last-used
/// time it was chosen at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub entries: Vec<(CacheKey, u64)>,
    /// The bytes they hold.
    pub bytes: u64,
}

/// Chooses what to remove under `rules`, applied in order (each sees what the ones before it
/// removed).
pub fn plan(store: &Store, rules: &[PruneRule], ctx: &PlanContext<'_>) -> Result<Plan> {
    store.flush()?;
    let mut state = State::new(Graph::new(store.records()?, ctx.marks));
    let mut out = Plan::default();
    let mut disk = ctx.disk;
    for rule in rules {
        let filters = Filters::parse(&rule.filters)?;
        let freed = state.apply(rule, &filters, ctx.now_ms, disk, &mut out);
        disk.free = disk.free.saturating_add(freed);
        out.bytes += freed;
    }
    Ok(out)
}

/// The graph and what the rules so far removed.
struct State {
    graph: Graph,
    removed: Vec<bool>,
    /// Children not yet removed, by index.
    live_children: Vec<usize>,
}

impl State {
    fn new(graph: Graph) -> State {
        let live_children = graph.children.iter().map(Vec::len).collect();
        State {
            removed: vec![false; graph.records.len()],
            live_children,
            graph,
        }
    }

    /// Applies one rule, appending to `out`; returns the bytes it removed.
    fn apply(
        &mut self,
        rule: &PruneRule,
        filters: &Filters,
        now_ms: u64,
        disk: DiskStats,
        out: &mut Plan,
    ) -> u64 {
        let cutoff = now_ms.saturating_sub(rule.keep_duration.as_millis() as u64);
        let eligible = |s: &State, i: usize| s.eligible(i, rule, filters, cutoff);
        let mut total = self.unshared_bytes();
        let keep = keep_bytes(total, disk, rule);
        let mut heap: BinaryHeap<Reverse<(u64, CacheKey, usize)>> = (0..self.removed.len())
            .filter(|&i| self.live_children[i] == 0 && eligible(self, i))
            .map(|i| self.heap_entry(i))
            .collect();
        let mut freed = 0;
        while let Some(Reverse((last_used, key, i))) = heap.pop() {
            // buildkitd stops at `total < keep`, which takes one record past the limit;
            // reservedSpace is a floor, so stop at it.
            if keep != 0 && total <= keep {
                break;
            }
            self.removed[i] = true;
            out.entries.push((key, last_used));
            let size = self.graph.records[i].size;
            freed += size;
            if !self.graph.shared[i] {
                total = total.saturating_sub(size);
            }
            for p in self.graph.parents[i].clone() {
                self.live_children[p] -= 1;
                if self.live_children[p] == 0 && eligible(self, p) {
                    heap.push(self.heap_entry(p));
                }
            }
        }
        freed
    }

    fn eligible(&self, i: usize, rule: &PruneRule, filters: &Filters, cutoff: u64) -> bool {
        let r = &self.graph.records[i];
        let shared = self.graph.shared[i];
        if self.removed[i] || self.graph.in_use[i] {
            return false;
        }
        if !rule.all && (shared || matches!(r.kind, RecordKind::Internal | RecordKind::Frontend)) {
            return false;
        }
        if !rule.keep_duration.is_zero() && r.last_used_ms > cutoff {
            return false;
        }
        filters.matches(&Subject {
            record: r,
            in_use: false,
            shared,
        })
    }

    fn heap_entry(&self, i: usize) -> Reverse<(u64, CacheKey, usize)> {
        let r = &self.graph.records[i];
        Reverse((r.last_used_ms, r.key, i))
    }

    /// Bytes of the records still there that nothing outside the cache shares.
    fn unshared_bytes(&self) -> u64 {
        (0..self.removed.len())
            .filter(|&i| !self.removed[i] && !self.graph.shared[i])
            .map(|i| self.graph.records[i].size)
            .sum()
    }
}

/// buildkitd's `calculateKeepBytes`: how many bytes the rule lets the cache keep (0: no limit).
pub(crate) fn keep_bytes(total: u64, disk: DiskStats, rule: &PruneRule) -> u64 {
    if rule.max_used_space == 0 && rule.reserved_space == 0 && rule.min_free_space == 0 {
        return 0;
    }
    let mut keep = rule.max_used_space;
    let excess = rule.min_free_space.saturating_sub(disk.free);
    if excess > 0 {
        let target = total.saturating_sub(excess);
        keep = if keep == 0 { target } else { keep.min(target) };
    } else if rule.min_free_space != 0 && keep == 0 {
        // Only min_free_space is set and the disk has enough free: nothing goes.
        keep = total;
    }
    keep.max(rule.reserved_space)
}
