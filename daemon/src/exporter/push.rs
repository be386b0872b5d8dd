//! `push=true`: the image just written into the node's store, sent to the registry of each of
//! its names: every blob the repository lacks (HEAD first), each platform's manifest by digest,
//! then the top manifest (or index) under the name's tag.

use super::children::Children;
use crate::solver::SolveError;
use std::time::SystemTime;

use crate::worker::images::{normalize_reference, CredentialSource, Pushed, Pusher};
use crate::worker::{Descriptor, Worker};

/// Hears of each blob a push handled: what happened to it, and since when.
pub type PushReport<'a> = &'a (dyn Fn(&Descriptor, Pushed, SystemTime) + Sync);

/// One push: where from, where to, who hears of it.
struct Push<'a> {
    worker: &'a Worker,
    pusher: Pusher,
    report: PushReport<'a>,
}

/// Pushes `top` (in the content store) under every one of `names`.
pub async fn push_image(
    worker: &Worker,
    credentials: &dyn CredentialSource,
    names: &[String],
    top: &Descriptor,
    report: PushReport<'_>,
) -> Result<(), SolveError> {
    for name in names {
        push_to(worker, credentials, name, top, report)
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
    report: PushReport<'_>,
) -> Result<(), String> {
    let reference = normalize_reference(name).map_err(|e| e.to_string())?;
    let pusher = Pusher::new(worker, &reference, credentials)
        .await
        .map_err(|e| e.to_string())?;
    let push = Push {
        worker,
        pusher,
        report,
    };
    let bytes = push.children(top).await?;
    let tag = reference.tag().unwrap_or("latest");
    push.pusher
        .push_manifest(tag, &top.media_type, bytes)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

impl Push<'_> {
    /// Pushes what `manifest` names (an index's manifests by digest, with their blobs);
    /// returns its own bytes for the caller to put.
    async fn children(&self, manifest: &Descriptor) -> Result<Vec<u8>, String> {
        let (children, bytes) = Children::of(self.worker, manifest).await?;
        for platform in children.manifests {
            let platform: Descriptor = platform.into();
            let own = Box::pin(self.children(&platform)).await?;
            self.pusher
                .push_manifest(&platform.digest, &platform.media_type, own)
                .await
                .map_err(|e| e.to_string())?;
        }
        for blob in children.config.into_iter().chain(children.layers) {
            let blob: Descriptor = blob.into();
            let started = SystemTime::now();
            let pushed = self
                .pusher
                .push_blob(self.worker, &blob)
                .await
                .map_err(|e| e.to_string())?;
            (self.report)(&blob, pushed, started);
        }
        Ok(bytes)
    }
}
