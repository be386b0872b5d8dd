//! The layers an image export lists, in the asked compression. Layers the build made are kept
//! uncompressed on the node and compressed for each export (a copy kept for the next one).
//! Layers of images (the base's, or another image's a merge stacked) are listed as their
//! registry blobs whatever the asked compression, as BuildKit keeps them; with
//! `force-compression=true` those in another compression are converted, as BuildKit converts
//! them (a blob already in the asked compression is kept, whatever its level).

use super::image::ImageExport;
use crate::oci::chain_ids;
use crate::solver::{Layer, Ref, SolveError};
use crate::worker::{CommittedLayer, Descriptor, Lease, NewLayer, Worker};

impl ImageExport {
    /// The base image's layers as the manifest lists them when force-compression converted
    /// them; None: its own blobs.
    pub(super) async fn base_layers(
        &self,
        worker: &Worker,
        lease: &Lease,
        result: &Ref,
    ) -> Result<Option<Vec<Descriptor>>, SolveError> {
        let Some(base) = result.base.as_ref().filter(|_| self.compression.force) else {
            return Ok(None);
        };
        let own = base.layers();
        let layers = own.iter().zip(base.diff_ids()).map(|(blob, diff_id)| {
            let blob = Descriptor {
                media_type: blob.media_type().to_string(),
                digest: blob.digest().to_string(),
                size: blob.size() as i64,
                annotations: Default::default(),
            };
            async move { self.image_blob(worker, lease, blob, &diff_id).await }
        });
        let converted = futures::future::try_join_all(layers).await?;
        // Nothing converted (the base is in the asked compression already): its own
        // descriptors, annotations and all, so forcing changes nothing.
        let unchanged = converted
            .iter()
            .zip(own)
            .all(|(new, old)| new.digest == old.digest().to_string());
        Ok((!unchanged).then_some(converted))
    }

    /// The layers above the base image: built ones compressed as asked, image layers (a merge
    /// can stack another image's) as their registry blobs (converted when forced).
    pub(super) async fn new_layers(
        &self,
        worker: &Worker,
        lease: &Lease,
        result: &Ref,
    ) -> Result<Vec<NewLayer>, SolveError> {
        let base_len = result.base.as_ref().map_or(0, |b| b.layers().len());
        let diff_ids: Vec<&str> = result.layers.iter().map(Layer::diff_id).collect();
        let chains = chain_ids(&diff_ids);
        let layers = result.layers.iter().enumerate().skip(base_len);
        // Layers are checked (and written or converted, if need be) side by side.
        let chains = &chains;
        let layers = layers.map(|(index, layer)| async move {
            let committed = match layer {
                Layer::Built(built) => CommittedLayer {
                    blob: self.built_blob(worker, lease, built).await?,
                    ..built.clone()
                },
                Layer::Image(image) => CommittedLayer {
                    chain_id: chains[index].clone(),
                    parent: index.checked_sub(1).map(|p| chains[p].clone()),
                    diff_id: image.diff_id.clone(),
                    blob: self
                        .image_blob(worker, lease, layer.to_blob().blob, &image.diff_id)
                        .await?,
                    created_ms: 0,
                },
            };
            Ok::<_, SolveError>(NewLayer {
                layer: committed,
                created_by: "nodekit build step".into(),
            })
        });
        futures::future::try_join_all(layers).await
    }

    /// The blob of a layer a step built, written now if nothing needed it before, then
    /// compressed as asked.
    async fn built_blob(
        &self,
        worker: &Worker,
        lease: &Lease,
        layer: &CommittedLayer,
    ) -> Result<Descriptor, SolveError> {
        worker
            .ensure_layer_blob(lease, &layer.chain_id, &layer.blob)
            .await
            .map_err(|e| SolveError::worker("writing a layer", e))?;
        worker
            .convert_layer(lease, &layer.blob, &layer.diff_id, self.compression)
            .await
            .map_err(|e| SolveError::worker("compressing a layer", e))
    }

    /// An image's layer blob: itself, or converted to the asked compression when forced.
    async fn image_blob(
        &self,
        worker: &Worker,
        lease: &Lease,
        blob: Descriptor,
        diff_id: &str,
    ) -> Result<Descriptor, SolveError> {
        if !self.compression.force {
            return Ok(blob);
        }
        worker
            .convert_layer(lease, &blob, diff_id, self.compression)
            .await
            .map_err(|e| SolveError::worker("force-compression: converting a layer", e))
    }
}
