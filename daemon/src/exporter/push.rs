//! `push=true`: the image just written into the node's store, sent to the registry of each of
//! its names: every blob the repository lacks (HEAD first), each platform's manifest by digest,
//! then the top manifest (or index) under the name's tag.

use super::children::Children;
use crate::solver::SolveError;
use std::time::SystemTime;

use crate::worker::images::{normalize_reference, CredentialSource, Pushed, Pusher};
use crate::worker::{Descriptor, Worker, WorkerError};

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
            .map_err(|e| SolveError::Other(e.describe(name)))?;
    }
    Ok(())
}

/// Why a push failed: the worker's (and the registry's) error, or the exporter's own.
enum PushError {
    Worker(WorkerError),
    Other(String),
}

impl PushError {
    /// `pushing <name>: <why>`. A registry's error names its URL (and so the registry) in its
    /// reason; a refusal (401) is worded `pushing <reference>: unauthorized (401): ...` whole.
    fn describe(self, name: &str) -> String {
        match self {
            PushError::Worker(refused @ WorkerError::Unauthorized { .. }) => refused.to_string(),
            PushError::Worker(WorkerError::Registry { reason, .. }) => {
                format!("pushing {name}: {reason}")
            }
            PushError::Worker(other) => format!("pushing {name}: {other}"),
            PushError::Other(reason) => format!("pushing {name}: {reason}"),
        }
    }
}

impl From<WorkerError> for PushError {
    fn from(error: WorkerError) -> Self {
        PushError::Worker(error)
    }
}

impl From<String> for PushError {
    fn from(reason: String) -> Self {
        PushError::Other(reason)
    }
}

async fn push_to(
    worker: &Worker,
    credentials: &dyn CredentialSource,
    name: &str,
    top: &Descriptor,
    report: PushReport<'_>,
) -> Result<(), PushError> {
    let reference = normalize_reference(name)?;
    let pusher = Pusher::new(worker, &reference, credentials).await?;
    let push = Push {
        worker,
        pusher,
        report,
    };
    let bytes = push.children(top).await?;
    let tag = reference.tag().unwrap_or("latest");
    push.pusher
        .push_manifest(tag, &top.media_type, bytes)
        .await?;
    Ok(())
}

impl Push<'_> {
    /// Pushes what `manifest` names (an index's manifests by digest, with their blobs);
    /// returns its own bytes for the caller to put.
    async fn children(&self, manifest: &Descriptor) -> Result<Vec<u8>, PushError> {
        let (children, bytes) = Children::of(self.worker, manifest).await?;
        for platform in children.manifests {
            let platform: Descriptor = platform.into();
            let own = Box::pin(self.children(&platform)).await?;
            self.pusher
                .push_manifest(&platform.digest, &platform.media_type, own)
                .await?;
        }
        for blob in children.config.into_iter().chain(children.layers) {
            let blob: Descriptor = blob.into();
            let started = SystemTime::now();
            let pushed = self.pusher.push_blob(self.worker, &blob).await?;
            (self.report)(&blob, pushed, started);
        }
        Ok(bytes)
    }
}
