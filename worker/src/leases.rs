//! containerd leases: everything a step creates (content, snapshots) is attached to one, so
//! containerd's GC leaves it alone while nodekit works and reclaims it once the lease is gone.

use std::collections::HashMap;

use crate::ContainerdChannel;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{CreateRequest, DeleteRequest, ListRequest};
use tokio_util::task::TaskTracker;

use super::context::CallContext;
use super::error::{StatusExt, WorkerResult};

/// Label that marks a lease as nodekit's, so leftovers can be found and released.
pub const OWNER_LABEL: &str = "nodekit.io/owner";
/// containerd deletes an expired lease by itself: a safety net if nodekitd dies mid-step.
const EXPIRE_LABEL: &str = "containerd.io/gc.expire";
const DEFAULT_LIFETIME_HOURS: u64 = 24;

/// A lease nodekit holds. Call [`Lease::release`] when done; if it is dropped unreleased (a
/// panic, a cancelled future) a background task deletes it.
pub struct Lease {
    id: String,
    channel: ContainerdChannel,
    ctx: CallContext,
    released: bool,
    /// Where the deletion of a dropped lease runs, so shutdown can wait for it.
    releases: Option<TaskTracker>,
}

impl Lease {
    pub async fn create(
        channel: ContainerdChannel,
        ctx: &CallContext,
        purpose: &str,
        owner: &str,
    ) -> WorkerResult<Lease> {
        let id = format!("nodekit-{purpose}-{}", super::random_suffix());
        let expires = rfc3339_in_hours(DEFAULT_LIFETIME_HOURS);
        let labels = HashMap::from([
            (OWNER_LABEL.to_string(), owner.to_string()),
            (EXPIRE_LABEL.to_string(), expires),
        ]);
        LeasesClient::new(channel.clone())
            .create(ctx.request(CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .op("lease create")?;
        Ok(Lease {
            id,
            channel,
            ctx: ctx.clone(),
            released: false,
            releases: None,
        })
    }

    /// Runs this lease's deletion on drop under `tracker`.
    pub fn tracked_by(mut self, tracker: &TaskTracker) -> Lease {
        self.releases = Some(tracker.clone());
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A call context whose created objects this lease protects.
    pub fn context(&self) -> CallContext {
        self.ctx.with_lease(&self.id)
    }

    /// Deletes the lease; what only it referenced becomes garbage for containerd's GC.
    pub async fn release(mut self) -> WorkerResult<()> {
        self.released = true;
        delete_lease(self.channel.clone(), &self.ctx, &self.id, false).await
    }

    /// Deletes the lease and waits for containerd's garbage collection to finish: everything no
    /// longer referenced (this lease's and every earlier released one's) is off the disk after.
    pub async fn release_and_collect(mut self) -> WorkerResult<()> {
        self.released = true;
        delete_lease(self.channel.clone(), &self.ctx, &self.id, true).await
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Lease").field(&self.id).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (channel, ctx, id) = (self.channel.clone(), self.ctx.clone(), self.id.clone());
        let release = async move {
            if let Err(error) = delete_lease(channel, &ctx, &id, false).await {
                tracing::warn!(lease = %id, %error, "could not release lease");
            }
        };
        match (&self.releases, tokio::runtime::Handle::try_current()) {
            (Some(tracker), Ok(_)) => drop(tracker.spawn(release)),
            (None, Ok(runtime)) => drop(runtime.spawn(release)),
            (_, Err(_)) => tracing::warn!(lease = %self.id, "no runtime left to release a lease"),
        }
    }
}

/// Deletes every lease labelled as `owner`'s: what an earlier run of the same daemon left when
/// it was killed. Returns how many went.
pub async fn release_leftovers(
    channel: ContainerdChannel,
    ctx: &CallContext,
    owner: &str,
) -> WorkerResult<usize> {
    let leases = LeasesClient::new(channel.clone())
        .list(ctx.request(ListRequest {
            filters: vec![format!("labels.\"{OWNER_LABEL}\"=={owner}")],
        }))
        .await
        .op("lease list")?
        .leases;
    for lease in &leases {
        delete_lease(channel.clone(), ctx, &lease.id, false).await?;
    }
    Ok(leases.len())
}

/// Deletes lease `id`; with `sync`, containerd answers once its garbage collection has run.
async fn delete_lease(
    channel: ContainerdChannel,
    ctx: &CallContext,
    id: &str,
    sync: bool,
) -> WorkerResult<()> {
    let deleted = LeasesClient::new(channel)
        .delete(ctx.request(DeleteRequest {
            id: id.to_string(),
            sync,
        }))
        .await;
    deleted.op_optional("lease delete").map(|_| ())
}

/// RFC 3339 UTC time `hours` from now.
fn rfc3339_in_hours(hours: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(hours * 3600);
    humantime::format_rfc3339_seconds(at).to_string()
}
