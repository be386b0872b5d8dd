//! Writing a multi-platform image: an image index over one manifest per platform (written by
//! the image writer), stored under the image's names.

use std::collections::BTreeMap;

use nodekit_oci::{self as oci, sha256_digest, Platform};
use serde_json::{json, Value};

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::image_writer::ManifestFormat;
use super::images::{put_image_record, ImageRecord};
use super::Worker;
use crate::Descriptor;

/// One platform's manifest in the index (its descriptor's annotations are the entry's).
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub manifest: Descriptor,
    pub platform: Platform,
}

/// An index to write.
#[derive(Clone, Debug)]
pub struct IndexWrite<'a> {
    /// Image-store names to point at it.
    pub names: &'a [String],
    pub entries: &'a [IndexEntry],
    pub format: ManifestFormat,
    /// The index's own annotations (BuildKit's `annotation-index.KEY`).
    pub annotations: &'a BTreeMap<String, String>,
    /// Its descriptor's (`annotation-index-descriptor.KEY`): on the image records' target.
    pub descriptor_annotations: &'a BTreeMap<String, String>,
}

/// Writes the index of `entries` and points every name at it.
pub async fn write_index(
    worker: &Worker,
    ctx: &CallContext,
    request: &IndexWrite<'_>,
) -> WorkerResult<Descriptor> {
    let media_type = match request.format {
        ManifestFormat::Oci => oci::OCI_INDEX,
        ManifestFormat::Docker => oci::DOCKER_MANIFEST_LIST,
    };
    let json = index_json(media_type, request.entries, request.annotations);
    let bytes = serde_json::to_vec(&json)
        .map_err(|e| WorkerError::Exec(format!("encoding the image index: {e}")))?;
    let digest = sha256_digest(&bytes);
    let manifests: Vec<String> = request
        .entries
        .iter()
        .map(|e| e.manifest.digest.clone())
        .collect();
    let size = bytes.len() as i64;
    let labels = content::index_gc_labels(&manifests);
    content::write_blob(worker.channel(), ctx, &digest, bytes, labels).await?;
    let descriptor = Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: request.descriptor_annotations.clone().into_iter().collect(),
    };
    for name in request.names {
        let record = ImageRecord {
            name: name.clone(),
            target: descriptor.clone(),
        };
        put_image_record(worker.channel(), ctx, &record).await?;
    }
    Ok(descriptor)
}

/// The index as JSON; serde_json's maps keep keys sorted, annotations included, so the same
/// index has the same bytes.
fn index_json(
    media_type: &str,
    entries: &[IndexEntry],
    annotations: &BTreeMap<String, String>,
) -> Value {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut platform = json!({
                "architecture": entry.platform.architecture,
                "os": entry.platform.os,
            });
            if let Some(variant) = &entry.platform.variant {
                platform["variant"] = json!(variant);
            }
            let mut manifest = json!({
                "mediaType": entry.manifest.media_type,
                "digest": entry.manifest.digest,
                "size": entry.manifest.size,
                "platform": platform,
            });
            if !entry.manifest.annotations.is_empty() {
                manifest["annotations"] = json!(entry.manifest.annotations);
            }
            manifest
        })
        .collect();
    let mut index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    if !annotations.is_empty() {
        index["annotations"] = json!(annotations);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_each_manifest_with_its_platform() {
        let entry = |digest: &str, platform: &str| IndexEntry {
            manifest: Descriptor {
                media_type: oci::OCI_MANIFEST.into(),
                digest: digest.into(),
                size: 7,
                annotations: Default::default(),
            },
            platform: Platform::parse(platform).unwrap(),
        };
        let index = index_json(
            oci::OCI_INDEX,
            &[
                entry("sha256:a", "linux/amd64"),
                entry("sha256:b", "linux/arm/v7"),
            ],
            &BTreeMap::new(),
        );
        assert_eq!(index["mediaType"], oci::OCI_INDEX);
        assert_eq!(
            index["manifests"][0]["platform"],
            json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(index["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(index["manifests"][1]["digest"], "sha256:b");
        assert!(index.get("annotations").is_none());
        assert!(index["manifests"][0].get("annotations").is_none());
    }

    #[test]
    fn annotations_are_the_indexs_and_each_entrys_and_sorted() {
        let mut entry = IndexEntry {
            manifest: Descriptor {
                media_type: oci::OCI_MANIFEST.into(),
                digest: "sha256:a".into(),
                size: 7,
                annotations: Default::default(),
            },
            platform: Platform::parse("linux/arm64").unwrap(),
        };
        for (k, v) in [("z", "1"), ("a", "2"), ("m", "3")] {
            entry.manifest.annotations.insert(k.into(), v.into());
        }
        let own = BTreeMap::from([("org.example.b".to_string(), "b".to_string())]);
        let index = index_json(oci::OCI_INDEX, &[entry], &own);
        assert_eq!(index["annotations"], json!({"org.example.b": "b"}));
        let bytes = serde_json::to_string(&index).unwrap();
        assert!(
            bytes.contains(r#""annotations":{"a":"2","m":"3","z":"1"}"#),
            "{bytes}"
        );
    }
}
