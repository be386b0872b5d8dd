//! `DiskUsage` and `Prune`: the build cache's records as BuildKit's `UsageRecord`s.

use std::time::{Duration, UNIX_EPOCH};

use cachestore::{PruneRule, UsageRecord as CacheUsage};
use nodekit_proto::moby::buildkit::v1::{PruneRequest, UsageRecord};
use tonic::Status;

use super::ApiState;
use crate::solver::cache::disk_stats;

/// `du`: every record matching the request's filters.
pub async fn disk_usage(
    state: &ApiState,
    filters: Vec<String>,
    age_limit_ns: i64,
) -> Result<Vec<UsageRecord>, Status> {
    let solver = state.solver()?;
    let Some(index) = &solver.index else {
        return Ok(Vec::new());
    };
    let age_limit = (age_limit_ns > 0).then(|| Duration::from_nanos(age_limit_ns as u64));
    let records = index
        .disk_usage(filters, age_limit)
        .await
        .map_err(Status::invalid_argument)?;
    crate::memory::work_ended();
    Ok(records.iter().map(wire_record).collect())
}

/// `prune`: removes what the request selects; with nothing running, an unfiltered prune also
/// drops cache mounts and the kept copies of local sources.
pub async fn prune(state: &ApiState, request: PruneRequest) -> Result<Vec<UsageRecord>, Status> {
    let solver = state.solver()?;
    let Some(index) = &solver.index else {
        return Ok(Vec::new());
    };
    let disk = disk_stats(&state.config.root);
    let everything = request.filter.is_empty() && request.all && request.keep_duration <= 0;
    let rule = prune_rule(request);
    let removed = index
        .collect(vec![rule], disk)
        .await
        .map_err(Status::invalid_argument)?;
    if everything && state.jobs.running() == 0 {
        solver.release_kept_sources().await;
        if let Err(error) = solver.cache_mounts.prune().await {
            tracing::warn!(%error, "could not remove cache mounts");
        }
    }
    // As upstream: the space is free when the client's prune returns (lease deletions still in
    // flight are waited for first, so their content goes too).
    solver.worker.settle(Duration::from_secs(5)).await;
    solver
        .worker
        .collect_garbage()
        .await
        .map_err(|e| Status::unavailable(format!("garbage collection: {e}")))?;
    crate::memory::work_ended();
    Ok(removed.iter().map(wire_record).collect())
}

fn prune_rule(request: PruneRequest) -> PruneRule {
    let bytes = |v: i64| v.max(0) as u64;
    PruneRule {
        all: request.all,
        filters: request.filter,
        keep_duration: Duration::from_nanos(bytes(request.keep_duration)),
        reserved_space: bytes(request.reserved_space),
        max_used_space: bytes(request.max_used_space),
        min_free_space: bytes(request.min_free_space),
    }
}

fn wire_record(record: &CacheUsage) -> UsageRecord {
    let at = |ms: u64| prost_types::Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms));
    #[allow(deprecated)]
    UsageRecord {
        id: record.id.clone(),
        mutable: record.mutable,
        in_use: record.in_use,
        size: record.size as i64,
        parent: record.parents.first().cloned().unwrap_or_default(),
        created_at: Some(at(record.created_ms)),
        last_used_at: Some(at(record.last_used_ms)),
        usage_count: record.usage_count as i64,
        description: record.description.clone(),
        record_type: record.record_type.as_str().to_string(),
        shared: record.shared,
        parents: record.parents.clone(),
    }
}
