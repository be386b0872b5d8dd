//! A cached result as the cache record's payload: the source image its stack starts from (by
//! manifest, rebuilt from the content store on a hit) and every other layer, bottom first.
//! Encoded with postcard after a version byte.

use oci_spec::image::{Descriptor as OciDescriptor, DescriptorBuilder, MediaType};
use serde::{Deserialize, Serialize};

use crate::oci::{chain_ids, Platform};
use crate::solver::result::{image_layers, ImageLayer, Layer, Ref};
use crate::worker::Descriptor;
use crate::worker::{CommittedLayer, ResolvedImage};

/// 2: layers carry their creation time. Records of version 1 decode to nothing: their steps
/// run once more.
const PAYLOAD_VERSION: u8 = 2;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StoredRef {
    pub base: Option<StoredBase>,
    /// The layers above the base's, bottom first.
    pub layers: Vec<StoredLayer>,
}

/// The source image a result starts from.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StoredBase {
    pub name: String,
    pub manifest: StoredBlob,
    pub config: String,
    pub platform: String,
    /// Its layer blobs (kept by the record's lease, so an export still finds them).
    pub layer_blobs: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct StoredBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StoredLayer {
    pub diff_id: String,
    pub blob: StoredBlob,
    /// For a layer of an image (merged in): the image it can be fetched from again.
    pub source: Option<String>,
    /// When the step made it (ms since the epoch).
    pub created_ms: u64,
}

impl StoredRef {
    pub fn of(result: &Ref) -> StoredRef {
        let base_len = result.base.as_ref().map_or(0, |b| b.layers().len());
        StoredRef {
            base: result.base.as_deref().map(StoredBase::of),
            layers: result.layers[base_len.min(result.layers.len())..]
                .iter()
                .map(StoredLayer::of)
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![PAYLOAD_VERSION];
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<StoredRef> {
        match bytes.split_first() {
            Some((&PAYLOAD_VERSION, rest)) => postcard::from_bytes(rest).ok(),
            _ => None,
        }
    }

    /// Every blob the result needs (its layers', its base image's manifest, config, layers).
    pub fn blobs(&self) -> Vec<String> {
        self.blobs_with_media_types()
            .into_iter()
            .map(|(digest, _)| digest)
            .collect()
    }

    /// [`StoredRef::blobs`] with the media type of each where the record knows it (its
    /// layers and its base's manifest; "" for the base's config and layers).
    pub fn blobs_with_media_types(&self) -> Vec<(String, String)> {
        let mut blobs: Vec<(String, String)> = self
            .layers
            .iter()
            .map(|l| (l.blob.digest.clone(), l.blob.media_type.clone()))
            .collect();
        if let Some(base) = &self.base {
            blobs.push((
                base.manifest.digest.clone(),
                base.manifest.media_type.clone(),
            ));
            blobs.push((base.config.clone(), String::new()));
            blobs.extend(base.layer_blobs.iter().map(|d| (d.clone(), String::new())));
        }
        blobs
    }

    /// The result's layers on `base` (the rebuilt base image, when there is one).
    pub fn layers_on(&self, base: Option<&ResolvedImage>) -> Option<Vec<Layer>> {
        let mut layers = base.map(image_layers).unwrap_or_default();
        let below = layers.len();
        for stored in &self.layers {
            layers.push(stored.to_layer()?);
        }
        // Built layers name their snapshot (chain ID) and its parent.
        let diff_ids: Vec<&str> = layers.iter().map(Layer::diff_id).collect();
        let chains = chain_ids(&diff_ids);
        for (index, layer) in layers.iter_mut().enumerate().skip(below) {
            if let Layer::Built(built) = layer {
                built.chain_id = chains[index].clone();
                built.parent = index.checked_sub(1).map(|p| chains[p].clone());
            }
        }
        Some(layers)
    }
}

impl StoredBase {
    fn of(image: &ResolvedImage) -> StoredBase {
        let set = &image.image;
        StoredBase {
            name: image.name.clone(),
            manifest: StoredBlob {
                digest: set.manifest_digest.clone(),
                media_type: set.manifest_media_type.clone(),
                size: set.manifest_size.max(0) as u64,
            },
            config: set.config_digest.clone(),
            platform: image.platform.to_string(),
            layer_blobs: image
                .layers()
                .iter()
                .map(|l| l.digest().to_string())
                .collect(),
        }
    }

    pub fn descriptor(&self) -> Descriptor {
        self.manifest.descriptor()
    }

    pub fn platform(&self) -> Option<Platform> {
        Platform::parse(&self.platform).ok()
    }
}

impl StoredBlob {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size as i64,
            annotations: Default::default(),
        }
    }
}

impl StoredLayer {
    fn of(layer: &Layer) -> StoredLayer {
        let blob = layer.to_blob().blob;
        StoredLayer {
            diff_id: layer.diff_id().to_string(),
            blob: StoredBlob {
                digest: blob.digest,
                media_type: blob.media_type,
                size: blob.size.max(0) as u64,
            },
            source: match layer {
                Layer::Image(image) => Some(image.source.whole()),
                Layer::Built(_) => None,
            },
            created_ms: match layer {
                Layer::Built(built) => built.created_ms,
                Layer::Image(_) => 0,
            },
        }
    }

    fn to_layer(&self) -> Option<Layer> {
        let Some(source) = &self.source else {
            return Some(Layer::Built(CommittedLayer {
                chain_id: String::new(),
                parent: None,
                diff_id: self.diff_id.clone(),
                blob: self.blob.descriptor(),
                created_ms: self.created_ms,
            }));
        };
        Some(Layer::Image(Box::new(ImageLayer {
            blob: oci_descriptor(&self.blob)?,
            diff_id: self.diff_id.clone(),
            source: crate::worker::images::normalize_reference(source).ok()?,
        })))
    }
}

fn oci_descriptor(blob: &StoredBlob) -> Option<OciDescriptor> {
    DescriptorBuilder::default()
        .media_type(MediaType::from(blob.media_type.as_str()))
        .digest(blob.digest.parse::<oci_spec::image::Digest>().ok()?)
        .size(blob.size)
        .build()
        .ok()
}
