//! `push=true`: the image just written into the node's store, sent to the registry of each of
//! its names: every blob the repository lacks (HEAD first), each platform's manifest by digest,
//! then the top manifest (or index) under the name's tag.

use serde::Deserialize;

use crate::solver::SolveError;
use crate::worker::images::{normalize_reference, CredentialSource, Pusher};
use crate::worker::{Descriptor, Worker};

/// What a manifest or an index names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Children {
    #[serde(default)]
    config: Option<Child>,
    #[serde(default)]
    layers: Vec<Child>,
    #[serde(default)]
    manifests: Vec<Child>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Child {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
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

/// Pushes `top` (in the content store) under every one of `names`.
pub async fn push_image(
    worker: &Worker,
    credentials: &dyn CredentialSource,
    names: &[String],
    top: &Descriptor,
) -> Result<(), SolveError> {
    for name in names {
        push_to(worker, credentials, name, top)
            .await
            .map_err(|e| SolveError::Other(format!("pushing {name}: {e}")))?;
    }
    Ok(())
}

async fn push_to(
    worker: &Worker,
    credentials: &dyn CredentialSource,
    name: &str,
    top: &Descriptor,
) -> Result<(), String> {
    let reference = normalize_reference(name).map_err(|e| e.to_string())?;
    let pusher = Pusher::new(worker, &reference, credentials)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = push_children(worker, &pusher, top).await?;
    let tag = reference.tag().unwrap_or("latest");
    pusher
        .push_manifest(tag, &top.media_type, bytes)
        .await
        .map_err(|e| e.to_string())
}

/// Pushes what `manifest` names (an index's manifests by digest, with their blobs); returns
/// its own bytes for the caller to put.
async fn push_children(
    worker: &Worker,
    pusher: &Pusher,
    manifest: &Descriptor,
) -> Result<Vec<u8>, String> {
    let bytes = worker
        .read_blob(&manifest.digest)
        .await
        .map_err(|e| e.to_string())?;
    let children: Children =
        serde_json::from_slice(&bytes).map_err(|e| format!("manifest {}: {e}", manifest.digest))?;
    for platform in children.manifests {
        let platform: Descriptor = platform.into();
        let own = Box::pin(push_children(worker, pusher, &platform)).await?;
        pusher
            .push_manifest(&platform.digest, &platform.media_type, own)
            .await
            .map_err(|e| e.to_string())?;
    }
    for blob in children.config.into_iter().chain(children.layers) {
        pusher
            .push_blob(worker, &blob.into())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}
