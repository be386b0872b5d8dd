//! Snapshots: unpacking image layers under containerd's own chain-ID names (so the kubelet and
//! nodekit share them), preparing writable snapshots for steps, and committing them.

use std::collections::HashMap;

use crate::ContainerdChannel;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
    StatSnapshotRequest, ViewSnapshotRequest,
};
use containerd_client::types::Mount;

use super::chains::{apply_chain, LayerBlob};
use super::content;
use super::context::CallContext;
use super::error::{StatusExt, WorkerError, WorkerResult};
use super::images::ResolvedImage;
use super::Worker;
use crate::Descriptor;

/// A snapshot's mounts as containerd hands them out. Outside the worker they are opaque: only
/// the worker mounts them, on the host or into a step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mounts(pub(crate) Vec<Mount>);

/// A writable snapshot a step runs on.
#[derive(Clone, Debug)]
pub struct ActiveSnapshot {
    pub key: String,
    /// The committed snapshot below it (a chain ID), or `None` for scratch.
    pub parent: Option<String>,
    pub mounts: Mounts,
}

/// Thin calls on containerd's Snapshots service for one snapshotter.
#[derive(Clone)]
pub struct Snapshots {
    channel: ContainerdChannel,
    snapshotter: String,
}

impl Snapshots {
    pub fn new(channel: ContainerdChannel, snapshotter: &str) -> Self {
        Snapshots {
            channel,
            snapshotter: snapshotter.to_string(),
        }
    }

    fn client(&self) -> SnapshotsClient<ContainerdChannel> {
        SnapshotsClient::new(self.channel.clone())
    }

    pub async fn exists(&self, ctx: &CallContext, key: &str) -> WorkerResult<bool> {
        let answer = self
            .client()
            .stat(ctx.request(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await;
        Ok(answer.op_optional("snapshot stat")?.is_some())
    }

    pub async fn prepare(
        &self,
        ctx: &CallContext,
        key: &str,
        parent: Option<&str>,
    ) -> WorkerResult<Vec<Mount>> {
        self.prepare_labeled(ctx, key, parent, HashMap::new()).await
    }

    /// [`Snapshots::prepare`] with labels (a `containerd.io/gc.root` keeps it without a lease).
    pub async fn prepare_labeled(
        &self,
        ctx: &CallContext,
        key: &str,
        parent: Option<&str>,
        labels: HashMap<String, String>,
    ) -> WorkerResult<Vec<Mount>> {
        Ok(self
            .client()
            .prepare(ctx.request(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_string(),
                parent: parent.unwrap_or_default().to_string(),
                labels,
            }))
            .await
            .op("snapshot prepare")?
            .mounts)
    }

    /// [`Snapshots::view`], for a step or another crate to hand back to the worker.
    pub async fn view_mounts(
        &self,
        ctx: &CallContext,
        key: &str,
        parent: Option<&str>,
    ) -> WorkerResult<Mounts> {
        self.view(ctx, key, parent).await.map(Mounts)
    }

    /// A read-only view of `parent`; no parent gives an empty list (an empty directory).
    pub async fn view(
        &self,
        ctx: &CallContext,
        key: &str,
        parent: Option<&str>,
    ) -> WorkerResult<Vec<Mount>> {
        let Some(parent) = parent else {
            return Ok(Vec::new());
        };
        Ok(self
            .client()
            .view(ctx.request(ViewSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            }))
            .await
            .op("snapshot view")?
            .mounts)
    }

    pub async fn mounts(&self, ctx: &CallContext, key: &str) -> WorkerResult<Vec<Mount>> {
        Ok(self
            .client()
            .mounts(ctx.request(MountsRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await
            .op("snapshot mounts")?
            .mounts)
    }

    /// Commits `key` as `name`. Returns false when `name` already existed (someone committed the
    /// same content first); the caller then removes its own copy.
    pub async fn commit(&self, ctx: &CallContext, name: &str, key: &str) -> WorkerResult<bool> {
        let answer = self
            .client()
            .commit(ctx.request(CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: name.to_string(),
                key: key.to_string(),
                labels: HashMap::new(),
            }))
            .await;
        match answer {
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(false),
            other => other.op("snapshot commit").map(|_| true),
        }
    }

    /// Removes a snapshot; one already gone counts as removed.
    pub async fn remove(&self, ctx: &CallContext, key: &str) -> WorkerResult<()> {
        let answer = self
            .client()
            .remove(ctx.request(RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await;
        answer.op_optional("snapshot remove").map(|_| ())
    }
}

/// Makes sure every layer of `image` is unpacked as a snapshot named by its chain ID, as
/// containerd's unpacker does; already unpacked layers (by the kubelet or an earlier build) are
/// reused without copying. Returns the top chain ID (None for an image without layers).
pub async fn unpack(
    worker: &Worker,
    ctx: &CallContext,
    image: &ResolvedImage,
) -> WorkerResult<Option<String>> {
    let diff_ids = image.diff_ids();
    if diff_ids.len() != image.layers().len() {
        return Err(WorkerError::MalformedImage {
            reference: image.name.clone(),
            reason: format!(
                "{} layers but {} diff IDs",
                image.layers().len(),
                diff_ids.len()
            ),
        });
    }
    let layers: Vec<LayerBlob> = image
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| LayerBlob {
            blob: Descriptor {
                media_type: layer.media_type().to_string(),
                digest: layer.digest().to_string(),
                size: layer.size() as i64,
                annotations: HashMap::new(),
            },
            diff_id,
            fetch: Some((image.reference.clone(), layer.clone())),
            built_in: None,
        })
        .collect();
    // The config names its unpacked snapshot (so the image counts as unpacked); it is looked at
    // while the chain is checked, and labelled only if it does not say so yet.
    let config = &image.image.config_digest;
    let (top, config_info) = futures::try_join!(
        apply_chain(worker, ctx, &layers, &image.name),
        content::info(worker.channel(), ctx, config)
    )?;
    if let Some(top) = &top {
        let (key, value) = content::snapshot_gc_label(worker.snapshotter(), top);
        let labelled = config_info.is_some_and(|info| info.labels.get(&key) == Some(&value));
        if !labelled {
            let labels = HashMap::from([(key, value)]);
            content::set_labels(worker.channel(), ctx, config, labels).await?;
        }
    }
    Ok(top)
}
