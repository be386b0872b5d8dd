//! Garbage collection and prune, as buildkitd does them.
//!
//! [`plan`] reads the index once (a read transaction: builds are not held up) and chooses what
//! to remove under a list of rules, applied in order as buildkitd applies its policies:
//!
//! - a record is a candidate when nothing marks it in use, it matches the rule's filters, it was
//!   last used before `now - keep_duration`, and, unless the rule says `all`, it is neither
//!   `internal` nor `frontend` nor shared outside the cache;
//! - candidates go least recently used first, and a record only once every record built on it
//!   is gone (children first), so a parent of a kept record is never chosen;
//! - with a space limit (`reserved_space`, `max_used_space`, `min_free_space`) removal stops
//!   once the cache is down to the limit (buildkitd's `calculateKeepBytes`, counting only
//!   unshared bytes; unlike buildkitd, which stops only below it and so takes one record past
//!   `reservedSpace`, the limit itself is kept); without one, every candidate goes.
//!
//! [`sweep`] then removes the plan in write transactions of at most [`MAX_BATCH`] records,
//! skipping any record that was hit, marked in use or built on since it was planned, and hands
//! each removed record to the caller (to release its lease and, for Prune, to stream it).

mod plan;
mod policy;

use std::collections::HashMap;

pub use plan::{plan, Plan, PlanContext};
pub use policy::{deserialize_duration, parse_duration, DiskSpace, DiskStats, GcPolicy, PruneRule};

use crate::error::Result;
use crate::key::CacheKey;
use crate::record::Record;
use crate::store::{Store, MAX_BATCH};

/// What a [`sweep`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records removed.
    pub removed: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Planned records left in place (hit, in use, or built on since planning).
    pub skipped: u64,
}

/// Removes the planned records, children first, in batches of at most [`MAX_BATCH`], calling
/// `on_removed` with each (after its batch committed). `in_use` is asked again at removal time.
pub fn sweep(
    store: &Store,
    plan: &Plan,
    in_use: impl Fn(&CacheKey) -> bool,
    mut on_removed: impl FnMut(&Record),
) -> Result<Swept> {
    let planned: HashMap<CacheKey, u64> = plan.entries.iter().copied().collect();
    let keys: Vec<CacheKey> = plan.entries.iter().map(|e| e.0).collect();
    let mut swept = Swept::default();
    for batch in keys.chunks(MAX_BATCH) {
        let removed = store.remove_if(batch, |r, has_children| {
            let unchanged = planned.get(&r.key).is_some_and(|&lu| r.last_used_ms <= lu);
            unchanged && !has_children && !in_use(&r.key)
        })?;
        swept.skipped += (batch.len() - removed.len()) as u64;
        for r in &removed {
            swept.removed += 1;
            swept.bytes += r.size;
            on_removed(r);
        }
        // Let a build's insert waiting on the write lock go before the next batch.
        std::thread::yield_now();
    }
    store.metrics().gc_run(swept.removed, swept.bytes);
    Ok(swept)
}

/// [`plan`] then [`sweep`]: one GC run or one Prune request.
pub fn collect(
    store: &Store,
    rules: &[PruneRule],
    ctx: &PlanContext<'_>,
    on_removed: impl FnMut(&Record),
) -> Result<Swept> {
    let plan = plan(store, rules, ctx)?;
    sweep(store, &plan, |k| ctx.marks.in_use.contains(k), on_removed)
}

#[cfg(test)]
mod tests;
