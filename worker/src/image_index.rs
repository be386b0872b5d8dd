//! Writing a multi-platform image: an image index over one manifest per platform (written by
//! the image writer), stored under the image's names.

use std::collections::HashMap;

use nodekit_oci::{self as oci, sha256_digest, Platform};
use serde_json::{json, Value};

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::image_writer::ManifestFormat;
use super::images::{put_image_record, ImageRecord};
use super::Worker;
use crate::Descriptor;

/// One platform's manifest in the index.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub manifest: Descriptor,
    pub platform: Platform,
}

/// Writes the index of `entries` and points every name at it.
pub async fn write_index(
    worker: &Worker,
    ctx: &CallContext,
    names: &[String],
    entries: &[IndexEntry],
    format: ManifestFormat,
) -> WorkerResult<Descriptor> {
    let media_type = match format {
        ManifestFormat::Oci => oci::OCI_INDEX,
        ManifestFormat::Docker => oci::DOCKER_MANIFEST_LIST,
    };
    let bytes = serde_json::to_vec(&index_json(media_type, entries))
        .map_err(|e| WorkerError::Exec(format!("encoding the image index: {e}")))?;
    let digest = sha256_digest(&bytes);
    let manifests: Vec<String> = entries.iter().map(|e| e.manifest.digest.clone()).collect();
    let size = bytes.len() as i64;
    let labels = content::index_gc_labels(&manifests);
    content::write_blob(worker.channel(), ctx, &digest, bytes, labels).await?;
    let descriptor = Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: HashMap::new(),
    };
    for name in names {
        let record = ImageRecord {
            name: name.clone(),
            target: descriptor.clone(),
        };
        put_image_record(worker.channel(), ctx, &record).await?;
    }
    Ok(descriptor)
}

fn index_json(media_type: &str, entries: &[IndexEntry]) -> Value {
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
            json!({
                "mediaType": entry.manifest.media_type,
                "digest": entry.manifest.digest,
                "size": entry.manifest.size,
                "platform": platform,
            })
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})
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
                annotations: HashMap::new(),
            },
            platform: Platform::parse(platform).unwrap(),
        };
        let index = index_json(
            oci::OCI_INDEX,
            &[
                entry("sha256:a", "linux/amd64"),
                entry("sha256:b", "linux/arm/v7"),
            ],
        );
        assert_eq!(index["mediaType"], oci::OCI_INDEX);
        assert_eq!(
            index["manifests"][0]["platform"],
            json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(index["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(index["manifests"][1]["digest"], "sha256:b");
    }
}
