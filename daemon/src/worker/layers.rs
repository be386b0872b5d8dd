//! Turning a step's snapshot into a layer blob with containerd's Diff service, and committing it
//! under its chain ID so the written image is unpacked from the start.

use std::collections::HashMap;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::DiffRequest;
use containerd_client::types::Descriptor;

use super::compress;
use super::content;
use super::context::CallContext;
use super::error::{StatusExt, WorkerError, WorkerResult};
use super::snapshots::ActiveSnapshot;
use super::Worker;
use crate::oci::{self, chain_id};

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
        match self {
            Compression::Uncompressed | Compression::Zstd => oci::OCI_LAYER,
            Compression::Gzip => oci::OCI_LAYER_GZIP,
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
    let view_key = format!("nodekit-view-{}", super::random_suffix());
    let lower = snapshots
        .view(ctx, &view_key, active.parent.as_deref())
        .await?;
    let diffed = DiffClient::new(worker.channel().clone())
        .diff(ctx.request(DiffRequest {
            left: lower,
            right: active.mounts.clone(),
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
    let blob = diffed?
        .diff
        .ok_or_else(|| WorkerError::Exec("containerd returned no layer descriptor".into()))?;
    let diff_id = diff_id_of(worker, ctx, &blob, compression).await?;
    let blob = match compression {
        Compression::Zstd => compress::compress_layer(worker, ctx, &blob, compression).await?,
        _ => blob,
    };
    let chain = chain_id(active.parent.as_deref(), &diff_id);
    if !snapshots.commit(ctx, &chain, &active.key).await? {
        snapshots.remove(ctx, &active.key).await?;
    }
    Ok(CommittedLayer {
        chain_id: chain,
        parent: active.parent,
        diff_id,
        blob,
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
    diffed?
        .diff
        .ok_or_else(|| WorkerError::Exec("containerd returned no layer descriptor".into()))
}
