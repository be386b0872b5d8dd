//! Leases that protect the build cache: one per cache record, holding the record's snapshot and
//! blobs until the record is removed. They carry their own label (not the per-run owner label
//! of step leases, which a restart releases) and never expire: the cache index decides.

use std::collections::{HashMap, HashSet};

use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::ListSnapshotsRequest;
use containerd_client::services::v1::{
    AddResourceRequest, CreateRequest, DeleteRequest, ListRequest, Resource,
};
use futures::StreamExt;

use super::error::{StatusExt, WorkerError, WorkerResult};
use super::Worker;

/// Label that marks a lease as one of this worker's cache leases.
pub const CACHE_OWNER_LABEL: &str = "nodekit.io/cache-owner";

/// What one cache lease holds: a committed snapshot and content blobs.
#[derive(Clone, Debug, Default)]
pub struct CacheResources {
    pub snapshot: Option<String>,
    pub blobs: Vec<String>,
}

impl Worker {
    /// Creates cache lease `id` holding `resources`.
    pub async fn create_cache_lease(
        &self,
        id: &str,
        resources: &CacheResources,
    ) -> WorkerResult<()> {
        let mut leases = LeasesClient::new(self.channel().clone());
        let labels = HashMap::from([(CACHE_OWNER_LABEL.to_string(), self.config().owner.clone())]);
        let create = CreateRequest {
            id: id.to_string(),
            labels,
        };
        leases
            .create(self.ctx().request(create))
            .await
            .op("cache lease create")?;
        self.add_to_lease(id, resources).await
    }

    /// Holds blob `digest` by the lease of `ctx`, if it has one, before the caller looks for
    /// it: a blob found present but held by nothing of the caller's may be collected (the
    /// image or build that held it released) between the look and its use.
    pub async fn hold_blob(&self, ctx: &crate::CallContext, digest: &str) -> WorkerResult<()> {
        let Some(lease) = ctx.lease() else {
            return Ok(());
        };
        let held = CacheResources {
            snapshot: None,
            blobs: vec![digest.to_string()],
        };
        self.add_to_lease(lease, &held).await
    }

    /// Adds `resources` to lease `id` (already held ones stay as they are). Objects that
    /// existed before a step made them again are not attached to its lease by containerd, so
    /// they are added explicitly.
    pub async fn add_to_lease(&self, id: &str, resources: &CacheResources) -> WorkerResult<()> {
        let mut leases = LeasesClient::new(self.channel().clone());
        let snapshot_type = format!("snapshots/{}", self.snapshotter());
        let snapshot = resources
            .snapshot
            .iter()
            .map(|name| (name, snapshot_type.clone()));
        let blobs = resources.blobs.iter().map(|d| (d, "content".to_string()));
        for (resource, kind) in snapshot.chain(blobs) {
            let add = AddResourceRequest {
                id: id.to_string(),
                resource: Some(Resource {
                    id: resource.clone(),
                    r#type: kind,
                }),
            };
            leases
                .add_resource(self.ctx().request(add))
                .await
                .op("lease add resource")?;
        }
        Ok(())
    }

    /// Deletes cache lease `id` (gone already is fine).
    pub async fn delete_cache_lease(&self, id: &str) -> WorkerResult<()> {
        let delete = DeleteRequest {
            id: id.to_string(),
            sync: false,
        };
        let deleted = LeasesClient::new(self.channel().clone())
            .delete(self.ctx().request(delete))
            .await;
        deleted.op_optional("cache lease delete").map(drop)
    }

    /// The ids of this worker's cache leases.
    pub async fn cache_leases(&self) -> WorkerResult<HashSet<String>> {
        let filter = format!("labels.\"{CACHE_OWNER_LABEL}\"=={}", self.config().owner);
        let leases = LeasesClient::new(self.channel().clone())
            .list(self.ctx().request(ListRequest {
                filters: vec![filter],
            }))
            .await
            .op("cache lease list")?
            .leases;
        Ok(leases.into_iter().map(|l| l.id).collect())
    }

    /// The names of every snapshot of the worker's snapshotter.
    pub async fn snapshot_names(&self) -> WorkerResult<HashSet<String>> {
        let request = ListSnapshotsRequest {
            snapshotter: self.snapshotter().to_string(),
            filters: Vec::new(),
        };
        let mut stream = SnapshotsClient::new(self.channel().clone())
            .list(self.ctx().request(request))
            .await
            .op("snapshot list")?;
        let mut names = HashSet::new();
        while let Some(page) = stream.next().await {
            let page = page.map_err(|status| WorkerError::containerd("snapshot list", status))?;
            names.extend(page.info.into_iter().map(|info| info.name));
        }
        Ok(names)
    }
}
