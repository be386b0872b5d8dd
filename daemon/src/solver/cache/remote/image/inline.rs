//! Reading an image's inline cache: an index's platform manifests, each manifest's layers, and
//! the records its config keeps under BuildKit's key (their results name the manifest's layers
//! by index). Pure.

use std::collections::HashMap;

use base64::Engine as _;
use cachestore::remote::{self, ImportedRecord, INLINE_KEY};
use serde::Deserialize;

use super::TopObject;
use crate::solver::cache::remote::collect::UNCOMPRESSED;
use crate::worker::Descriptor;

/// An image's inline records and its layers by digest.
pub type InlineRecords = (Vec<ImportedRecord>, HashMap<String, Descriptor>);

/// An image manifest with a config and layers.
pub struct ImageManifest {
    pub config: String,
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    rootfs: Option<RootFs>,
    #[serde(rename = "moby.buildkit.cache.v0", default)]
    inline: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The manifests an index lists (None: `top` is not an index).
pub fn manifests_of(top: &[u8]) -> Result<Option<Vec<String>>, String> {
    let parsed: TopObject = serde_json::from_slice(top).map_err(|e| e.to_string())?;
    if parsed.config.is_some() || parsed.manifests.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        parsed.manifests.into_iter().map(|d| d.digest).collect(),
    ))
}

impl ImageManifest {
    /// The manifest's config and layers; None for one without layers (an attestation's too
    /// fails later, its layer count not being its config's).
    pub fn parse(bytes: &[u8]) -> Result<Option<ImageManifest>, String> {
        let parsed: TopObject = serde_json::from_slice(bytes)
            .map_err(|e| format!("an image manifest that is not JSON: {e}"))?;
        match parsed.config {
            Some(config) if !parsed.layers.is_empty() => Ok(Some(ImageManifest {
                config: config.digest,
                layers: parsed.layers.into_iter().map(Descriptor::from).collect(),
            })),
            _ => Ok(None),
        }
    }

    /// The records the image config keeps inline, with the layers (by digest, annotated with
    /// their diff IDs); None when it keeps none or its layers are not its config's.
    pub fn inline_records(&self, config: &[u8]) -> Result<Option<InlineRecords>, String> {
        let parsed: ImageConfig = serde_json::from_slice(config)
            .map_err(|e| format!("an image config that is not JSON: {e}"))?;
        let diff_ids = parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        let Some(encoded) = parsed.inline else {
            return Ok(None);
        };
        if diff_ids.len() != self.layers.len() {
            tracing::warn!(
                "invalid image with mismatching manifest and config: its inline cache is not read"
            );
            return Ok(None);
        }
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the image's {INLINE_KEY} is not base64: {e}"))?;
        let digests: Vec<String> = self.layers.iter().map(|l| l.digest.clone()).collect();
        let (records, _) = remote::parse_inline(&json, &digests).map_err(|e| e.to_string())?;
        let layers = self
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| {
                let mut layer = layer.clone();
                layer.annotations.insert(UNCOMPRESSED.into(), diff_id);
                (layer.digest.clone(), layer)
            })
            .collect();
        Ok(Some((records, layers)))
    }
}

#[cfg(test)]
mod tests {
    use cachestore::{CacheKey, Record};
    use serde_json::json;

    use super::*;

    fn image(layers: usize) -> Vec<u8> {
        let layers: Vec<_> = (0..layers)
            .map(|i| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:l{i}"), "size": 10}))
            .collect();
        json!({"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 2}, "layers": layers})
            .to_string()
            .into_bytes()
    }

    fn config(diff_ids: usize, inline: Option<&[u8]>) -> Vec<u8> {
        let mut config = json!({"rootfs": {"type": "layers", "diff_ids": (0..diff_ids).map(|i| format!("sha256:d{i}")).collect::<Vec<_>>()}});
        if let Some(inline) = inline {
            config[INLINE_KEY] = base64::engine::general_purpose::STANDARD
                .encode(inline)
                .into();
        }
        config.to_string().into_bytes()
    }

    #[test]
    fn an_images_inline_records_name_its_layers_with_their_diff_ids() {
        let record = Record {
            key: CacheKey::from_bytes([7; 32]),
            payload: vec![2, 7],
            ..Record::default()
        };
        let inline = remote::build_inline(&[(&record, 2)]).unwrap();
        let manifest = ImageManifest::parse(&image(2)).unwrap().unwrap();
        assert_eq!(manifest.config, "sha256:c");
        let (records, layers) = manifest
            .inline_records(&config(2, Some(&inline)))
            .unwrap()
            .unwrap();
        assert_eq!(records[0].chain, ["sha256:l0", "sha256:l1"]);
        assert_eq!(layers["sha256:l1"].annotations[UNCOMPRESSED], "sha256:d1");
        // No inline cache, or a config whose layers are not the manifest's: nothing.
        assert!(manifest.inline_records(&config(2, None)).unwrap().is_none());
        assert!(manifest
            .inline_records(&config(3, Some(&inline)))
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_index_lists_its_manifests_and_a_manifest_is_no_index() {
        let index = json!({"manifests": [{"mediaType": "m", "digest": "sha256:a", "size": 1}]});
        assert_eq!(
            manifests_of(index.to_string().as_bytes()).unwrap(),
            Some(vec!["sha256:a".to_string()])
        );
        assert_eq!(manifests_of(&image(1)).unwrap(), None);
        assert!(ImageManifest::parse(&image(0)).unwrap().is_none());
    }
}
