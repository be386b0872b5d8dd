//! Decoding indexes and manifests, and choosing the manifest for a platform.

use nodekit_oci::{self as oci, Platform};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::error::{WorkerError, WorkerResult};

/// A platform manifest with its config, as read from the store or a registry.
#[derive(Clone, Debug)]
pub struct ImageManifestSet {
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest_size: i64,
    pub manifest: ImageManifest,
    pub config_digest: String,
    pub config: ImageConfiguration,
}

/// The media type of a manifest-like blob: its own `mediaType`, else guessed from its shape
/// (OCI allows leaving it out).
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(media_type) = value.get("mediaType").and_then(|v| v.as_str()) {
        return Some(media_type.to_string());
    }
    if value.get("manifests").is_some() {
        Some(oci::OCI_INDEX.to_string())
    } else if value.get("layers").is_some() {
        Some(oci::OCI_MANIFEST.to_string())
    } else {
        None
    }
}

pub fn parse_index(reference: &str, bytes: &[u8]) -> WorkerResult<ImageIndex> {
    serde_json::from_slice(bytes).map_err(|e| malformed(reference, format!("index: {e}")))
}

pub fn parse_manifest(reference: &str, bytes: &[u8]) -> WorkerResult<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| malformed(reference, format!("manifest: {e}")))
}

pub fn parse_config(reference: &str, bytes: &[u8]) -> WorkerResult<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| malformed(reference, format!("config: {e}")))
}

/// Picks the manifest for `platform` out of an index; names what the index offers otherwise.
pub fn select_manifest(
    reference: &str,
    index: &ImageIndex,
    platform: &Platform,
) -> WorkerResult<Descriptor> {
    let offered = |d: &Descriptor| {
        d.platform().as_ref().map(|p| {
            Platform::new(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    };
    let found = index
        .manifests()
        .iter()
        .filter(|d| oci::is_manifest(d.media_type().as_ref()))
        .find(|d| offered(d).is_some_and(|p| platform.matches(&p)));
    found.cloned().ok_or_else(|| {
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| offered(d).map(|p| p.to_string()))
            .collect();
        WorkerError::NoMatchingPlatform {
            reference: reference.to_string(),
            platform: platform.to_string(),
            available: if available.is_empty() {
                "nothing".into()
            } else {
                available.join(", ")
            },
        }
    })
}

pub fn malformed(reference: &str, reason: String) -> WorkerError {
    WorkerError::MalformedImage {
        reference: reference.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
      "manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
         "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "platform":{"os":"linux","architecture":"amd64"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,
         "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
         "platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;

    #[test]
    fn selects_by_normalized_platform() {
        let index = parse_index("x", INDEX.as_bytes()).unwrap();
        let arm = select_manifest("x", &index, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert!(arm.digest().to_string().ends_with("bbbb"));
    }

    #[test]
    fn a_missing_platform_names_what_is_offered() {
        let index = parse_index("x", INDEX.as_bytes()).unwrap();
        let err = select_manifest("x", &index, &Platform::parse("linux/s390x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    }

    #[test]
    fn media_type_is_guessed_when_absent() {
        assert_eq!(
            media_type_of(br#"{"manifests":[]}"#).as_deref(),
            Some(oci::OCI_INDEX)
        );
        assert_eq!(media_type_of(b"not json"), None);
    }
}
