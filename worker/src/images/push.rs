//! Pushing to a registry (a build cache now; images with the exporter's `push=true`): blobs
//! from containerd's content store, sent only when the repository lacks them (HEAD first,
//! a cross-repository mount when the blob is known to come from another repository of the same
//! registry), streamed in constant memory; then the manifest under its tag. Pushes go to the
//! registry itself, never a mirror; the client's credentials first, then the daemon's.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use oci_spec::distribution::Reference;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::credentials::{self, auth_host, CredentialSource, Found};
use super::distribution::{Distribution, DistributionError};
use super::pull::{registry_error, unauthorized};
use crate::content;
use crate::error::{RegistryOperation, WorkerError, WorkerResult};
use crate::{Descriptor, Worker};

/// The annotation (and content label) prefix naming repositories a blob came from, per
/// registry host (containerd's).
pub const SOURCE_ANNOTATION: &str = "containerd.io/distribution.source.";

/// Chunks in flight between containerd and the registry.
const CHUNKS_IN_FLIGHT: usize = 4;

/// One repository of one registry, with the credentials for it.
pub struct Pusher {
    registry: Distribution,
    repository: String,
    reference: Reference,
    found: Found,
}

/// What pushing a blob did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The repository had it.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    Uploaded,
}

impl Pusher {
    /// A pusher to `reference`'s repository on its registry.
    pub async fn new(
        worker: &Worker,
        reference: &Reference,
        client_credentials: &dyn CredentialSource,
    ) -> WorkerResult<Pusher> {
        let hosts = worker.registry_hosts();
        let endpoint = hosts
            .endpoints(reference.registry(), reference.resolve_registry())
            .into_iter()
            .find(|e| !e.mirror)
            .ok_or_else(|| WorkerError::Registry {
                reference: reference.whole(),
                reason: "no endpoint to push to".into(),
            })?;
        let host = auth_host(&endpoint.host);
        let found = credentials::lookup(client_credentials, hosts.auth_file.as_deref(), host).await;
        let registry = Distribution::new(host, &endpoint.transport, found.credentials.clone())
            .map_err(|e| registry_error(reference, &e))?;
        Ok(Pusher {
            registry,
            repository: reference.repository().to_string(),
            reference: reference.clone(),
            found,
        })
    }

    /// Makes sure the repository has `blob`, sending it from the content store if needed.
    pub async fn push_blob(&self, worker: &Worker, blob: &Descriptor) -> WorkerResult<Pushed> {
        let digest = &blob.digest;
        let present = self
            .registry
            .blob_exists(&self.repository, digest)
            .await
            .map_err(|e| self.error(e))?;
        if present.is_some() {
            return Ok(Pushed::Present);
        }
        for from in self.mount_sources(worker, blob).await? {
            let mounted = self
                .registry
                .mount_blob(&self.repository, digest, &from)
                .await
                .map_err(|e| self.error(e))?;
            if mounted {
                return Ok(Pushed::Mounted);
            }
        }
        self.upload(worker, blob).await?;
        Ok(Pushed::Uploaded)
    }

    /// Other repositories of this registry the blob came from: its source annotation, and
    /// the source label a pull left on it in the content store (containerd's, nodekit's).
    async fn mount_sources(&self, worker: &Worker, blob: &Descriptor) -> WorkerResult<Vec<String>> {
        let (registry, repository) = (self.reference.registry(), self.repository.as_str());
        let mut sources = mount_sources(&blob.annotations, registry, repository);
        if let Some(info) = content::info(worker.channel(), worker.ctx(), &blob.digest).await? {
            for source in mount_sources(&info.labels, registry, repository) {
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
        }
        Ok(sources)
    }

    async fn upload(&self, worker: &Worker, blob: &Descriptor) -> WorkerResult<()> {
        let (chunks, received) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let reading =
            content::read_blob_chunks(worker.channel(), worker.ctx(), &blob.digest, chunks);
        let data = ReceiverStream::new(received).map(|chunk| Ok(Bytes::from(chunk)));
        let size = blob.size.max(0) as u64;
        let sending = self
            .registry
            .upload_blob(&self.repository, &blob.digest, size, data);
        let (read, sent) = tokio::join!(reading, sending);
        // The registry's error says more when both failed (the reader stops when it goes).
        sent.map_err(|e| self.error(e))?;
        read
    }

    /// Puts a manifest (or index) under `tag_or_digest` and returns its digest; nothing is
    /// sent when the repository has it there already.
    pub async fn push_manifest(
        &self,
        tag_or_digest: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> WorkerResult<String> {
        let digest = nodekit_oci::sha256_digest(&bytes);
        let current = self
            .registry
            .manifest_exists(&self.repository, tag_or_digest)
            .await
            .map_err(|e| self.error(e))?;
        if current.as_deref() == Some(digest.as_str()) {
            return Ok(digest);
        }
        self.registry
            .put_manifest(&self.repository, tag_or_digest, media_type, bytes)
            .await
            .map_err(|e| self.error(e))
    }

    fn error(&self, error: DistributionError) -> WorkerError {
        match error {
            DistributionError::Unauthorized => {
                unauthorized(RegistryOperation::Push, &self.reference, &self.found)
            }
            other => registry_error(&self.reference, &other),
        }
    }
}

/// The repositories of `registry` other than `repository` that `annotations` name as the
/// blob's sources (`containerd.io/distribution.source.<registry>=repo[,repo...]`).
fn mount_sources(
    annotations: &HashMap<String, String>,
    registry: &str,
    repository: &str,
) -> Vec<String> {
    annotations
        .get(&format!("{SOURCE_ANNOTATION}{registry}"))
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty() && *r != repository)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_mounted_from_the_other_repositories_of_the_same_registry() {
        let annotations = HashMap::from([
            (
                format!("{SOURCE_ANNOTATION}r.example"),
                "team/a, team/b".to_string(),
            ),
            (
                format!("{SOURCE_ANNOTATION}other.example"),
                "x/y".to_string(),
            ),
        ]);
        assert_eq!(
            mount_sources(&annotations, "r.example", "team/b"),
            ["team/a"]
        );
        assert!(mount_sources(&annotations, "none.example", "team/b").is_empty());
    }
}
