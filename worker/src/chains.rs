//! Materialising a stack of layers as snapshots named by chain ID, the way containerd's unpacker
//! does: images (unpack), and the merged or diffed results of build steps. A prefix already
//! there (unpacked by the kubelet or an earlier build) is reused without copying.

use std::collections::HashMap;

use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::ApplyRequest;
use nodekit_oci::chain_ids;
use oci_spec::distribution::Reference;
use oci_spec::image::Descriptor as OciDescriptor;

use super::context::CallContext;
use super::error::{StatusExt, WorkerError, WorkerResult};
use super::images::fetch_blob;
use super::layer_blobs::ensure_built_blob;
use super::Worker;
use crate::Descriptor;

/// One layer to apply: its blob, the diff ID it must unpack to, and where the blob comes from
/// when the content store lacks it.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub blob: Descriptor,
    pub diff_id: String,
    /// An image layer: fetched from this image's registry.
    pub fetch: Option<(Reference, OciDescriptor)>,
    /// A build step's layer: written from the snapshot the step committed.
    pub built_in: Option<String>,
}

/// Makes sure every prefix of `layers` exists as a snapshot named by its chain ID; returns the
/// top chain ID (None for no layers). `what` names the stack in errors.
pub async fn apply_chain(
    worker: &Worker,
    ctx: &CallContext,
    layers: &[LayerBlob],
    what: &str,
) -> WorkerResult<Option<String>> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let chains = chain_ids(&diff_ids);
    let snapshots = worker.snapshots();
    let mut parent: Option<&str> = None;
    for (layer, chain) in layers.iter().zip(&chains) {
        if !snapshots.exists(ctx, chain).await? {
            apply_layer(worker, ctx, layer, parent, chain, what).await?;
        }
        parent = Some(chain);
    }
    // Snapshots that existed already are not this lease's yet: hold the top one (it keeps
    // those below it), so an image removed meanwhile cannot take the stack away mid-build.
    if let (Some(lease), Some(top)) = (ctx.lease(), chains.last()) {
        let held = super::cache_leases::CacheResources {
            snapshot: Some(top.clone()),
            blobs: Vec::new(),
        };
        worker.add_to_lease(lease, &held).await?;
    }
    Ok(chains.last().cloned())
}

async fn apply_layer(
    worker: &Worker,
    ctx: &CallContext,
    layer: &LayerBlob,
    parent: Option<&str>,
    chain: &str,
    what: &str,
) -> WorkerResult<()> {
    if let Some((reference, descriptor)) = &layer.fetch {
        fetch_blob(worker, ctx, reference, descriptor).await?;
    }
    if let Some(snapshot) = &layer.built_in {
        ensure_built_blob(worker, ctx, snapshot, &layer.blob).await?;
    }
    let snapshots = worker.snapshots();
    let key = format!("nodekit-extract-{} {chain}", super::random_suffix());
    let mounts = snapshots.prepare(ctx, &key, parent).await?;
    let applied = DiffClient::new(worker.channel().clone())
        .apply(ctx.request(ApplyRequest {
            diff: Some(layer.blob.clone().into()),
            mounts,
            payloads: HashMap::new(),
            sync_fs: false,
        }))
        .await
        .op("layer apply");
    let outcome = match applied {
        Ok(response) => match response.applied {
            Some(d) if d.digest == layer.diff_id => Ok(()),
            other => Err(WorkerError::MalformedImage {
                reference: what.to_string(),
                reason: format!(
                    "layer {} unpacks to {} but {} was expected",
                    layer.blob.digest,
                    other.map(|d| d.digest).unwrap_or_default(),
                    layer.diff_id
                ),
            }),
        },
        Err(e) => Err(e),
    };
    if let Err(error) = outcome {
        snapshots.remove(ctx, &key).await?;
        return Err(error);
    }
    if !snapshots.commit(ctx, chain, &key).await? {
        snapshots.remove(ctx, &key).await?;
    }
    Ok(())
}
