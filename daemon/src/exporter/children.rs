//! What an image's manifest or index names (its config, layers, platform manifests), read
//! from the content store for a push or a tarball.

use serde::Deserialize;

use crate::solver::SolveError;
use crate::worker::{Descriptor, Worker};

/// What a manifest or an index names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Children {
    #[serde(default)]
    pub config: Option<Child>,
    #[serde(default)]
    pub layers: Vec<Child>,
    #[serde(default)]
    pub manifests: Vec<Child>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Child {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

impl From<Child> for Descriptor {
    fn from(child: Child) -> Descriptor {
        Descriptor {
            media_type: child.media_type,
            digest: child.digest,
            size: child.size,
            annotations: Default::default(),
        }
    }
}

impl Children {
    /// What `manifest` (in the content store) names, with its own bytes.
    pub async fn of(worker: &Worker, manifest: &Descriptor) -> Result<(Children, Vec<u8>), String> {
        let bytes = worker
            .read_blob(&manifest.digest)
            .await
            .map_err(|e| e.to_string())?;
        let children = serde_json::from_slice(&bytes)
            .map_err(|e| format!("manifest {}: {e}", manifest.digest))?;
        Ok((children, bytes))
    }
}

/// Every blob of the image `top` names, `top` first: an index, its manifests, their configs
/// and layers, each once.
pub async fn image_blobs(worker: &Worker, top: &Descriptor) -> Result<Vec<Descriptor>, SolveError> {
    let mut blobs = vec![top.clone()];
    let mut at = 0;
    while at < blobs.len() {
        let blob = blobs[at].clone();
        at += 1;
        if !crate::oci::is_index(&blob.media_type) && !crate::oci::is_manifest(&blob.media_type) {
            continue;
        }
        let (children, _) = Children::of(worker, &blob)
            .await
            .map_err(SolveError::Other)?;
        let named = children
            .manifests
            .into_iter()
            .chain(children.config)
            .chain(children.layers)
            .map(Descriptor::from);
        for child in named {
            if !blobs.iter().any(|b| b.digest == child.digest) {
                blobs.push(child);
            }
        }
    }
    Ok(blobs)
}
