//! Turning a step's snapshot into a layer and committing it under its chain ID, so the written
//! image is unpacked from the start. An uncompressed layer is only hashed here, from the overlay
//! upper directory (its blob is written when an export or a merge first needs it, see
//! `layer_blobs`); others come from containerd's Diff service.

use std::collections::HashMap;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::DiffRequest;
use nodekit_oci::{self as oci, chain_id};

use super::cache_leases::CacheResources;
use super::compress;
use super::content;
use super::context::CallContext;
use super::error::{StatusExt, WorkerError, WorkerResult};
use super::snapshots::ActiveSnapshot;
use super::upperdir;
use super::Worker;
use crate::Descriptor;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "uncompressed" => Some(Compression::Uncompressed),
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Its name, as the exporter's `compression` attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Uncompressed => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression of a layer of `media_type` (OCI or Docker spelling); None for any other
    /// (a non-distributable layer, not a layer).
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match oci::layer_media_type(media_type, true) {
            oci::OCI_LAYER => Some(Compression::Uncompressed),
            oci::OCI_LAYER_GZIP => Some(Compression::Gzip),
            oci::OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The layer media type of this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Uncompressed => oci::OCI_LAYER,
            Compression::Gzip => oci::OCI_LAYER_GZIP,
            Compression::Zstd => oci::OCI_LAYER_ZSTD,
        }
    }

    /// What to ask containerd's differ for (it cannot write zstd; see `compress`).
    fn differ_media_type(self) -> &'static str {
        self.differ_compression().media_type()
    }

    /// What containerd's differ writes for this compression.
    fn differ_compression(self) -> Compression {
        match self {
            Compression::Uncompressed | Compression::Zstd => Compression::Uncompressed,
            Compression::Gzip => Compression::Gzip,
        }
    }
}

/// A committed step result with its layer.
#[derive(Clone, Debug)]
pub struct CommittedLayer {
    /// The committed snapshot, named by its chain ID.
    pub chain_id: String,
    pub parent: Option<String>,
    /// Digest of the uncompressed layer tar.
    pub diff_id: String,
    /// The (compressed) layer blob in the content store.
    pub blob: Descriptor,
    /// When the step made it, in ms since the epoch (0: unknown). A cached result keeps its
    /// original time, so a fully cached rebuild writes the very same image.
    pub created_ms: u64,
}

/// Computes the layer of `active` against its parent, then commits `active` under the resulting
/// chain ID. `active` is consumed: committed, or removed if that snapshot already existed.
pub async fn commit_layer(
    worker: &Worker,
    ctx: &CallContext,
    active: ActiveSnapshot,
    compression: Compression,
) -> WorkerResult<CommittedLayer> {
    let snapshots = worker.snapshots();
    let changes = upperdir::changes_dir(&active.mounts.0, active.parent.is_some());
    if let (Compression::Uncompressed, Some(changes)) = (compression, changes) {
        let blob = hash_upper_layer(changes).await?;
        return commit_as(worker, ctx, active, blob.digest.clone(), blob).await;
    }
    let view_key = format!("nodekit-view-{}", super::random_suffix());
    let lower = snapshots
        .view(ctx, &view_key, active.parent.as_deref())
        .await?;
    let diffed = DiffClient::new(worker.channel().clone())
        .diff(ctx.request(DiffRequest {
            left: lower,
            right: active.mounts.0.clone(),
            media_type: compression.differ_media_type().to_string(),
            r#ref: format!("nodekit-diff-{}", super::random_suffix()),
            labels: HashMap::new(),
            source_date_epoch: None,
        }))
        .await
        .op("layer diff");
    if active.parent.is_some() {
        snapshots.remove(ctx, &view_key).await?;
    }
    let blob: Descriptor = diffed?
        .diff
        .ok_or_else(|| WorkerError::Exec("containerd returned no layer descriptor".into()))?
        .into();
    worker
        .counters()
        .layer_written(compression.differ_compression(), blob.size);
    let diff_id = diff_id_of(worker, ctx, &blob, compression).await?;
    let blob = match compression {
        Compression::Zstd => compress::compress_layer(worker, ctx, &blob, compression).await?,
        _ => blob,
    };
    commit_as(worker, ctx, active, diff_id, blob).await
}

/// Commits `active` under the chain ID its layer `diff_id` gives it (or drops it when that
/// snapshot exists already).
async fn commit_as(
    worker: &Worker,
    ctx: &CallContext,
    active: ActiveSnapshot,
    diff_id: String,
    blob: Descriptor,
) -> WorkerResult<CommittedLayer> {
    let snapshots = worker.snapshots();
    let chain = chain_id(active.parent.as_deref(), &diff_id);
    // The same result may exist already (an identical step, a context synced again after a
    // restart) and containerd does not attach an existing object to a new lease. Claim the
    // name before committing: an existing snapshot is then held from here on, even if its old
    // lease was just released (a restart releases a crashed run's leases, and containerd's GC
    // may be about to sweep it); one already swept leaves the name free for ours.
    if let Some(lease) = ctx.lease() {
        let held = CacheResources {
            snapshot: Some(chain.clone()),
            blobs: vec![blob.digest.clone()],
        };
        worker.add_to_lease(lease, &held).await?;
    }
    if !snapshots.commit(ctx, &chain, &active.key).await? {
        snapshots.remove(ctx, &active.key).await?;
    }
    Ok(CommittedLayer {
        chain_id: chain,
        parent: active.parent,
        diff_id,
        blob,
        created_ms: now_ms(),
    })
}

/// The descriptor of the uncompressed layer of what a step changed, hashed from `changes` (its
/// upper directory). Nothing is written: the blob may never be needed.
async fn hash_upper_layer(changes: std::path::PathBuf) -> WorkerResult<Descriptor> {
    let hashed = tokio::task::spawn_blocking(move || upperdir::hash_layer(&changes)).await;
    let (digest, size) = match hashed {
        Ok(Ok(hashed)) => hashed,
        Ok(Err(error)) => return Err(WorkerError::io("hashing a layer", error)),
        Err(error) => return Err(WorkerError::Exec(format!("hashing a layer: {error}"))),
    };
    Ok(Descriptor {
        media_type: oci::OCI_LAYER.to_string(),
        digest,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        annotations: HashMap::new(),
    })
}

/// containerd's differ records the uncompressed digest as a label on the blob.
async fn diff_id_of(
    worker: &Worker,
    ctx: &CallContext,
    blob: &Descriptor,
    compression: Compression,
) -> WorkerResult<String> {
    if compression != Compression::Gzip {
        return Ok(blob.digest.clone());
    }
    let info = content::info(worker.channel(), ctx, &blob.digest).await?;
    info.and_then(|i| i.labels.get(content::UNCOMPRESSED_LABEL).cloned())
        .ok_or_else(|| {
            WorkerError::Exec(format!(
                "layer {} has no {} label",
                blob.digest,
                content::UNCOMPRESSED_LABEL
            ))
        })
}

/// The uncompressed layer that turns committed snapshot `lower` into `upper` (None: empty), in
/// the content store; its digest is its diff ID.
pub async fn diff_snapshots(
    worker: &Worker,
    ctx: &CallContext,
    lower: Option<&str>,
    upper: Option<&str>,
) -> WorkerResult<Descriptor> {
    let snapshots = worker.snapshots();
    let (lower_key, upper_key) = (
        format!("nodekit-view-{}", super::random_suffix()),
        format!("nodekit-view-{}", super::random_suffix()),
    );
    let left = snapshots.view(ctx, &lower_key, lower).await?;
    let right = snapshots.view(ctx, &upper_key, upper).await?;
    let diffed = DiffClient::new(worker.channel().clone())
        .diff(ctx.request(DiffRequest {
            left,
            right,
            media_type: oci::OCI_LAYER.to_string(),
            r#ref: format!("nodekit-diff-{}", super::random_suffix()),
            labels: HashMap::new(),
            source_date_epoch: None,
        }))
        .await
        .op("layer diff");
    for (key, parent) in [(&lower_key, lower), (&upper_key, upper)] {
        if parent.is_some() {
            snapshots.remove(ctx, key).await?;
        }
    }
    let blob = diffed?
        .diff
        .map(Descriptor::from)
        .ok_or_else(|| WorkerError::Exec("containerd returned no layer descriptor".into()))?;
    worker
        .counters()
        .layer_written(Compression::Uncompressed, blob.size);
    Ok(blob)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
