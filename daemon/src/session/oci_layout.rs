//! An OCI layout the client serves on its session (buildctl `--oci-layout NAME=DIR`, store id
//! `oci:NAME`): the image an `oci-layout://NAME@DIGEST` source or named context names, read blob
//! by blob. The digest is an image index or a manifest; an index is narrowed to the platform's
//! manifest.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::content::SessionContentStore;
use super::SessionManager;
use crate::oci::Platform;
use crate::solver::SolveError;
use crate::worker::images::select_manifest;
use crate::worker::Descriptor;

/// Media types of an index (OCI's and Docker's).
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// One layout of a client's session.
pub struct OciLayout {
    store: SessionContentStore,
    name: String,
}

/// What a layout's image is for one platform.
pub struct LayoutImage {
    /// What the source names (an index or a manifest), as containerd keeps it.
    pub target: Descriptor,
    /// The platform's manifest (the target itself when it is one).
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config_digest: String,
    /// Every blob the image needs for the platform: manifests, config, layers.
    pub blobs: Vec<String>,
}

impl OciLayout {
    /// Layout `name` of session `session_id`.
    pub async fn open(
        sessions: &Arc<SessionManager>,
        session_id: &str,
        name: &str,
    ) -> Result<OciLayout, SolveError> {
        let session = sessions.get(session_id).await.map_err(|_| {
            SolveError::Session(format!(
                "oci-layout {name}: the build's session {session_id} is gone"
            ))
        })?;
        Ok(OciLayout {
            store: SessionContentStore::new(session.channel.clone(), &format!("oci:{name}")),
            name: name.to_string(),
        })
    }

    /// The whole of blob `digest`.
    pub async fn blob(&self, digest: &str) -> Result<Vec<u8>, SolveError> {
        let (sink, mut chunks) = mpsc::channel(8);
        let reading = self.store.read(digest, sink);
        let mut out = Vec::new();
        let collecting = async {
            while let Some(chunk) = chunks.recv().await {
                out.extend_from_slice(&chunk);
            }
        };
        let (read, ()) = tokio::join!(reading, collecting);
        read.map_err(|status| self.error(digest, status))?;
        Ok(out)
    }

    /// The size of blob `digest`.
    pub async fn size(&self, digest: &str) -> Result<u64, SolveError> {
        self.store
            .size(digest)
            .await
            .map_err(|status| self.error(digest, status))?
            .ok_or_else(|| self.missing(digest))
    }

    /// Streams blob `digest` into `sink`.
    pub async fn read(&self, digest: &str, sink: mpsc::Sender<Bytes>) -> Result<(), SolveError> {
        self.store
            .read(digest, sink)
            .await
            .map_err(|status| self.error(digest, status))
    }

    /// The image `digest` names, for `platform`.
    pub async fn image(
        &self,
        digest: &str,
        platform: &Platform,
    ) -> Result<LayoutImage, SolveError> {
        let bytes = self.blob(digest).await?;
        let media_type = media_type(&bytes);
        let target = Descriptor {
            media_type: media_type.clone(),
            digest: digest.to_string(),
            size: bytes.len() as i64,
            annotations: Default::default(),
        };
        let mut blobs = vec![digest.to_string()];
        let (manifest, manifest_bytes) = if INDEX_TYPES.contains(&media_type.as_str()) {
            let chosen = self.platform_manifest(&bytes, platform)?;
            let manifest_bytes = self.blob(&chosen.digest).await?;
            blobs.push(chosen.digest.clone());
            (chosen, manifest_bytes)
        } else {
            (target.clone(), bytes)
        };
        let parsed: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| self.invalid(&manifest.digest, &e.to_string()))?;
        let digest_of = |v: &serde_json::Value| v["digest"].as_str().map(str::to_string);
        let config_digest = digest_of(&parsed["config"])
            .ok_or_else(|| self.invalid(&manifest.digest, "no config"))?;
        blobs.push(config_digest.clone());
        let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
        blobs.extend(layers.iter().filter_map(digest_of));
        Ok(LayoutImage {
            target,
            manifest,
            manifest_bytes,
            config_digest,
            blobs,
        })
    }

    fn platform_manifest(
        &self,
        index: &[u8],
        platform: &Platform,
    ) -> Result<Descriptor, SolveError> {
        let parsed: oci_spec::image::ImageIndex =
            serde_json::from_slice(index).map_err(|e| self.invalid("the index", &e.to_string()))?;
        let chosen = select_manifest(&self.name, &parsed, platform)
            .map_err(|e| SolveError::worker(format!("oci-layout {}", self.name), e))?;
        Ok(Descriptor {
            media_type: chosen.media_type().to_string(),
            digest: chosen.digest().to_string(),
            size: chosen.size() as i64,
            annotations: Default::default(),
        })
    }

    fn error(&self, digest: &str, status: tonic::Status) -> SolveError {
        if status.code() == tonic::Code::NotFound {
            return self.missing(digest);
        }
        SolveError::Session(format!(
            "oci-layout {}: reading {digest}: {}",
            self.name,
            status.message()
        ))
    }

    fn missing(&self, digest: &str) -> SolveError {
        SolveError::InvalidDefinition(format!(
            "oci-layout {}: the client's layout has no blob {digest} (is --oci-layout {}=DIR given?)",
            self.name, self.name
        ))
    }

    fn invalid(&self, what: &str, why: &str) -> SolveError {
        SolveError::InvalidDefinition(format!("oci-layout {}: {what}: {why}", self.name))
    }
}

/// A manifest's or index's media type, from its `mediaType` (else from its shape).
fn media_type(bytes: &[u8]) -> String {
    let parsed: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match parsed["mediaType"].as_str() {
        Some(media_type) => media_type.to_string(),
        None if parsed.get("manifests").is_some() => INDEX_TYPES[0].to_string(),
        None => "application/vnd.oci.image.manifest.v1+json".to_string(),
    }
}
