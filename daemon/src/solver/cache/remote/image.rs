//! The cache as BuildKit stores it: the cache config as a blob, and an OCI image manifest
//! whose config it is (`image-manifest=true`, the default) or an index listing the layers and
//! the config (`image-manifest=false`; a Docker manifest list without `oci-mediatypes`).
//! Pure: bytes and descriptors, nothing written.

pub mod inline;

use std::collections::{HashMap, HashSet};

use cachestore::remote::{self, ExportRecord, CACHE_CONFIG_MEDIA_TYPE};
use serde_json::{json, Value};

use super::collect::RemoteRecord;
use crate::oci;
use crate::worker::Descriptor;

/// A cache ready to be written: its blobs, then its manifest (or index).
pub struct CacheImage {
    /// Every layer blob, once each, in the config's order.
    pub layers: Vec<Descriptor>,
    pub config: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub manifest: Vec<u8>,
    /// The manifest's (or index's) descriptor: what `cache.manifest` answers.
    pub descriptor: Descriptor,
}

/// How the top object is written.
#[derive(Clone, Copy, Debug)]
pub struct ImageFormat {
    pub image_manifest: bool,
    pub oci_mediatypes: bool,
}

impl CacheImage {
    pub fn build(records: &[RemoteRecord], format: ImageFormat) -> Result<CacheImage, String> {
        let exports: Vec<ExportRecord<'_>> = records
            .iter()
            .map(|r| ExportRecord {
                record: &r.record,
                chain: r.chain.iter().map(|d| d.digest.clone()).collect(),
            })
            .collect();
        let config = remote::build(&exports)?;
        let layers = layers_in_order(records, &config.layers);
        let config = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
        let config_descriptor = descriptor(CACHE_CONFIG_MEDIA_TYPE, &config);
        let top = if format.image_manifest {
            image_manifest(&layers, &config_descriptor)
        } else {
            index(&layers, &config_descriptor, format.oci_mediatypes)
        };
        let manifest = serde_json::to_vec(&top).map_err(|e| e.to_string())?;
        let media_type = top["mediaType"].as_str().unwrap_or(oci::OCI_MANIFEST);
        Ok(CacheImage {
            descriptor: descriptor(media_type, &manifest),
            layers,
            config,
            config_descriptor,
            manifest,
        })
    }

    /// `cache.manifest`: the top object's descriptor as compact JSON.
    pub fn response_descriptor(&self) -> String {
        json!({
            "mediaType": self.descriptor.media_type,
            "digest": self.descriptor.digest,
            "size": self.descriptor.size,
        })
        .to_string()
    }
}

/// The descriptor of each blob the config's layers name, in that order.
fn layers_in_order(records: &[RemoteRecord], layers: &[remote::CacheLayer]) -> Vec<Descriptor> {
    let by_digest: HashMap<&str, &Descriptor> = records
        .iter()
        .flat_map(|r| r.chain.iter())
        .map(|d| (d.digest.as_str(), d))
        .collect();
    let mut seen = HashSet::new();
    layers
        .iter()
        .filter(|layer| seen.insert(layer.blob.as_str()))
        .filter_map(|layer| by_digest.get(layer.blob.as_str()).map(|d| (*d).clone()))
        .collect()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: oci::sha256_digest(bytes),
        size: bytes.len() as i64,
        annotations: HashMap::new(),
    }
}

fn descriptor_json(descriptor: &Descriptor) -> Value {
    let mut value = json!({
        "mediaType": descriptor.media_type,
        "digest": descriptor.digest,
        "size": descriptor.size,
    });
    if !descriptor.annotations.is_empty() {
        value["annotations"] = json!(descriptor.annotations);
    }
    value
}

fn image_manifest(layers: &[Descriptor], config: &Descriptor) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": descriptor_json(config),
        "layers": layers.iter().map(descriptor_json).collect::<Vec<_>>(),
    })
}

fn index(layers: &[Descriptor], config: &Descriptor, oci_mediatypes: bool) -> Value {
    let mut manifests: Vec<Value> = layers.iter().map(descriptor_json).collect();
    manifests.push(descriptor_json(config));
    let media_type = if oci_mediatypes {
        oci::OCI_INDEX
    } else {
        oci::DOCKER_MANIFEST_LIST
    };
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    })
}

#[cfg(test)]
mod tests;

/// What an imported top object names: the cache config and the layer blobs, by digest.
#[derive(Debug, PartialEq)]
pub struct CacheParts {
    pub config: Descriptor,
    pub layers: HashMap<String, Descriptor>,
}

/// The cache config and layers a manifest or index names; None when it names no cache config
/// (an image, possibly with an inline cache). The type comes from the bytes, as BuildKit
/// detects it (a local import's descriptor has none).
pub fn parse_top(bytes: &[u8]) -> Result<Option<CacheParts>, String> {
    let top: TopObject = serde_json::from_slice(bytes)
        .map_err(|e| format!("the cache manifest is not a manifest or an index: {e}"))?;
    let is_manifest = top.config.is_some() || !top.layers.is_empty();
    if is_manifest && !top.manifests.is_empty() {
        return Err("invalid ambiguous manifest and manifest list".into());
    }
    let (config, others) = if is_manifest {
        let config = top.config.ok_or("the cache manifest has no config")?;
        if config.media_type != CACHE_CONFIG_MEDIA_TYPE {
            return Ok(None);
        }
        (config, top.layers)
    } else {
        let mut entries = top.manifests;
        let Some(at) = entries
            .iter()
            .position(|d| d.media_type == CACHE_CONFIG_MEDIA_TYPE)
        else {
            return Ok(None);
        };
        let config = entries.remove(at);
        (config, entries)
    };
    Ok(Some(CacheParts {
        config: config.into(),
        layers: others
            .into_iter()
            .map(|d| (d.digest.clone(), d.into()))
            .collect(),
    }))
}

#[derive(serde::Deserialize)]
struct TopObject {
    #[serde(default)]
    config: Option<WireDescriptor>,
    #[serde(default)]
    layers: Vec<WireDescriptor>,
    #[serde(default)]
    manifests: Vec<WireDescriptor>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

impl From<WireDescriptor> for Descriptor {
    fn from(wire: WireDescriptor) -> Descriptor {
        Descriptor {
            media_type: wire.media_type,
            digest: wire.digest,
            size: wire.size,
            annotations: wire.annotations,
        }
    }
}
