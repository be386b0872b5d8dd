//! Keeping the cache in bounds: `du`, `prune` and the GC policies (buildkitd's
//! `[[worker.containerd.gcpolicy]]`), run in the index's own bounded transactions on a blocking
//! thread; the leases of removed records are released afterwards.

use std::path::Path;
use std::time::Duration;

use cachestore::gc::{self, PlanContext};
use cachestore::usage::{disk_usage, usage_record, Marks};
use cachestore::{DiskStats, Filters, GcPolicy, PruneRule, Record, UsageRecord};

use super::index::{now_ms, CacheIndex};

/// How long GC waits after the cache grew.
const GC_SETTLE: Duration = Duration::from_secs(2);
/// How many times as long as a GC run the loop waits before the next.
const GC_SHARE: u32 = 9;

impl CacheIndex {
    /// The records matching `filters` (unused for `age_limit`, if given), for `du`.
    pub async fn disk_usage(
        &self,
        filters: Vec<String>,
        age_limit: Option<Duration>,
    ) -> Result<Vec<UsageRecord>, String> {
        let filters = Filters::parse(&filters).map_err(|e| e.to_string())?;
        let store = self.store().clone();
        let marks = self.marks();
        tokio::task::spawn_blocking(move || {
            disk_usage(&store, &marks, &filters, age_limit, now_ms()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Removes what `rules` select (never what a running build holds) and releases the
    /// removed records' leases; returns their `du` lines.
    pub async fn collect(
        &self,
        rules: Vec<PruneRule>,
        disk: DiskStats,
    ) -> Result<Vec<UsageRecord>, String> {
        for rule in &rules {
            Filters::parse(&rule.filters).map_err(|e| e.to_string())?;
        }
        let store = self.store().clone();
        let marks = self.marks();
        let removed = tokio::task::spawn_blocking(move || {
            let ctx = PlanContext {
                now_ms: now_ms(),
                disk,
                marks: &marks,
            };
            let mut removed: Vec<Record> = Vec::new();
            gc::collect(&store, &rules, &ctx, |r| removed.push(r.clone()))
                .map(|_| removed)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        self.release(&removed).await;
        Ok(removed
            .iter()
            .map(|r| usage_record(r, false, false))
            .collect())
    }

    /// One GC run under `policies` (buildkitd's defaults when there are none).
    pub async fn run_gc(&self, policies: &[GcPolicy], root: &Path) -> Result<usize, String> {
        let disk = disk_stats(root);
        let rules: Vec<PruneRule> = if policies.is_empty() {
            GcPolicy::defaults(disk)
        } else {
            policies.to_vec()
        }
        .iter()
        .map(|p| p.to_rule(disk))
        .collect();
        self.collect(rules, disk).await.map(|removed| removed.len())
    }

    /// Runs GC under `policies` a moment after the cache grew (so a build's records settle
    /// first) and every `interval` in any case; never returns. A run reads every record (a
    /// second at a million), so the next waits at least `GC_SHARE` times as long: while builds
    /// keep adding records, GC takes at most a tenth of a core.
    pub async fn gc_loop(&self, policies: Vec<GcPolicy>, root: &Path, interval: Duration) {
        let mut rest = Duration::ZERO;
        loop {
            let _ = tokio::time::timeout(interval, self.grew.notified()).await;
            tokio::time::sleep(GC_SETTLE.max(rest)).await;
            let started = std::time::Instant::now();
            match self.run_gc(&policies, root).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "build cache GC removed records"),
                Err(error) => tracing::warn!(%error, "build cache GC failed"),
            }
            rest = started.elapsed() * GC_SHARE;
            crate::memory::work_ended();
        }
    }

    fn marks(&self) -> Marks {
        Marks {
            in_use: self.in_use(),
            shared: Default::default(),
        }
    }
}

/// Total and free bytes of the filesystem holding `path` (zeros if it cannot be read).
pub fn disk_stats(path: &Path) -> DiskStats {
    match nix::sys::statvfs::statvfs(path) {
        Ok(stats) => {
            let block = stats.fragment_size().max(1);
            DiskStats {
                total: stats.blocks().saturating_mul(block),
                free: stats.blocks_available().saturating_mul(block),
            }
        }
        Err(_) => DiskStats::default(),
    }
}
