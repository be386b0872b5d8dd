//! Pulling from a registry (token auth, HTTPS; plain HTTP for configured hosts and loopback)
//! straight into containerd's content store, then recording the image for the kubelet too.

use std::collections::HashMap;

use futures::TryStreamExt;
use nodekit_oci::{self as oci, sha256_digest, Platform};
use oci_spec::distribution::Reference;
use oci_spec::image::Descriptor as OciDescriptor;

use super::credentials::{self, auth_host, CredentialSource, Found};
use super::distribution::{Distribution, DistributionError};
use super::hosts::Endpoint;
use super::manifest::{self, ImageManifestSet};
use super::resolve::{ImageOrigin, ResolvedImage};
use super::store::{put_image_record, ImageRecord};
use crate::content;
use crate::context::CallContext;
use crate::error::{RegistryOperation, WorkerError, WorkerResult};
use crate::Descriptor;
use crate::Worker;

pub(super) async fn pull(
    worker: &Worker,
    reference: &Reference,
    name: &str,
    platform: &Platform,
    client_credentials: &dyn CredentialSource,
) -> WorkerResult<ResolvedImage> {
    let hosts = worker.registry_hosts();
    let endpoints = hosts.endpoints(reference.registry(), reference.resolve_registry());
    let lease = worker.lease("pull").await?;
    let ctx = lease.context();
    let mut result = Err(WorkerError::Registry {
        reference: name.to_string(),
        reason: "no endpoint to pull from".into(),
    });
    for endpoint in &endpoints {
        let host = auth_host(&endpoint.host);
        let found = credentials::lookup(client_credentials, hosts.auth_file.as_deref(), host).await;
        let source = Source {
            endpoint,
            reference: &endpoint_reference(endpoint, reference),
            found: &found,
        };
        result = pull_under_lease(worker, &ctx, &source, name, platform).await;
        match &result {
            Err(error) if endpoint.mirror => {
                tracing::warn!(image = %name, mirror = %endpoint.host, "pulling from the mirror failed, trying the next: {error}");
            }
            _ => break,
        }
    }
    let released = lease.release().await;
    // The pull's own error first: a lease that cannot be released after a failed pull (its
    // containerd went away) is a consequence, not the reason.
    let mut image = result?;
    released?;
    image.reference = reference.clone();
    Ok(image)
}

/// The registry itself is asked with the reference as written; a mirror with its own host.
pub(super) fn endpoint_reference(endpoint: &Endpoint, reference: &Reference) -> Reference {
    if endpoint.mirror {
        endpoint.reference(reference)
    } else {
        reference.clone()
    }
}

/// Where one pull attempt goes: the endpoint, the reference as it serves it, the credentials.
struct Source<'a> {
    endpoint: &'a Endpoint,
    reference: &'a Reference,
    found: &'a Found,
}

async fn pull_under_lease(
    worker: &Worker,
    ctx: &CallContext,
    source: &Source<'_>,
    name: &str,
    platform: &Platform,
) -> WorkerResult<ResolvedImage> {
    let reference = source.reference;
    let client = Fetcher::new(source.endpoint, reference, source.found.clone())?;
    let unavailable = |error: WorkerError| match error {
        WorkerError::Unauthorized { .. } => error,
        other => WorkerError::ImageUnavailable {
            reference: name.to_string(),
            namespace: worker.ctx().namespace().to_string(),
            reason: other.to_string(),
        },
    };
    let (top_bytes, top_digest) = client
        .manifest(&manifest_reference(reference))
        .await
        .map_err(unavailable)?;
    let top_type = manifest::media_type_of(&top_bytes)
        .ok_or_else(|| manifest::malformed(name, "manifest without a media type".into()))?;
    let target = Descriptor {
        media_type: top_type.clone(),
        digest: top_digest.clone(),
        size: top_bytes.len() as i64,
        annotations: HashMap::new(),
    };
    let (manifest_bytes, manifest_digest, manifest_type, index) = if oci::is_index(&top_type) {
        let index = manifest::parse_index(name, &top_bytes)?;
        let chosen = manifest::select_manifest(name, &index, platform)?;
        let (bytes, digest) = client.manifest(chosen.digest().as_ref()).await?;
        (bytes, digest, chosen.media_type().to_string(), Some(index))
    } else {
        // A lone manifest serves every platform, as containerd and BuildKit use it; the
        // Dockerfile frontend warns (InvalidBaseImagePlatform) when its config says otherwise.
        (
            top_bytes.clone(),
            top_digest.clone(),
            top_type.clone(),
            None,
        )
    };
    let parsed = manifest::parse_manifest(name, &manifest_bytes)?;
    let config_digest = parsed.config().digest().to_string();
    let config_bytes = client.blob(&config_digest).await?;
    let config = manifest::parse_config(name, &config_bytes)?;

    for layer in parsed.layers() {
        client.fetch_layer(worker, ctx, layer).await?;
    }
    let (channel, layer_digests) = (worker.channel(), layer_digests(parsed.layers()));
    content::write_blob(channel, ctx, &config_digest, config_bytes, HashMap::new()).await?;
    let labels = content::manifest_gc_labels(&config_digest, &layer_digests);
    content::write_blob(
        channel,
        ctx,
        &manifest_digest,
        manifest_bytes.clone(),
        labels,
    )
    .await?;
    if let Some(index) = &index {
        let children: Vec<String> = index
            .manifests()
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        let labels = content::index_gc_labels(&children);
        content::write_blob(channel, ctx, &top_digest, top_bytes, labels).await?;
    }
    let record = ImageRecord {
        name: name.to_string(),
        target: target.clone(),
    };
    put_image_record(channel, ctx, &record).await?;
    Ok(ResolvedImage {
        name: name.to_string(),
        reference: reference.clone(),
        target,
        platform: platform.clone(),
        image: ImageManifestSet {
            manifest_size: manifest_bytes.len() as i64,
            manifest_digest,
            manifest_media_type: manifest_type,
            manifest: parsed,
            config_digest,
            config,
        },
        origin: ImageOrigin::Registry,
    })
}

fn layer_digests(layers: &[OciDescriptor]) -> Vec<String> {
    layers.iter().map(|l| l.digest().to_string()).collect()
}

/// The tag or digest to ask a registry's manifest endpoint for.
pub(super) fn manifest_reference(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// One repository of one endpoint, with the credentials for it and the words its errors use.
pub(super) struct Fetcher {
    registry: Distribution,
    repository: String,
    reference: Reference,
    found: Found,
}

impl Fetcher {
    pub(super) fn new(
        endpoint: &Endpoint,
        reference: &Reference,
        found: Found,
    ) -> WorkerResult<Fetcher> {
        let registry = Distribution::new(
            auth_host(&endpoint.host),
            &endpoint.transport,
            found.credentials.clone(),
        )
        .map_err(|e| registry_error(reference, &e))?;
        Ok(Fetcher {
            registry,
            repository: reference.repository().to_string(),
            reference: reference.clone(),
            found,
        })
    }

    /// A manifest (by tag or digest), checked against the digest asked for.
    pub(super) async fn manifest(&self, tag_or_digest: &str) -> WorkerResult<(Vec<u8>, String)> {
        let bytes = self
            .registry
            .manifest(
                &self.repository,
                tag_or_digest,
                &oci::MANIFEST_ACCEPT.join(", "),
            )
            .await
            .map_err(|e| self.error(e))?;
        let digest = sha256_digest(&bytes);
        if tag_or_digest.starts_with("sha256:") && tag_or_digest != digest {
            return Err(WorkerError::Registry {
                reference: self.reference.whole(),
                reason: format!(
                    "manifest digest mismatch: asked for {tag_or_digest}, got {digest}"
                ),
            });
        }
        Ok((bytes, digest))
    }

    pub(super) async fn blob(&self, digest: &str) -> WorkerResult<Vec<u8>> {
        self.registry
            .blob(&self.repository, digest)
            .await
            .map_err(|e| self.error(e))
    }

    /// Streams a layer into the content store unless it is there already.
    pub(super) async fn fetch_layer(
        &self,
        worker: &Worker,
        ctx: &CallContext,
        layer: &OciDescriptor,
    ) -> WorkerResult<()> {
        let digest = layer.digest().to_string();
        // Held first: a layer another image shares could be collected between the look and
        // the image record that names it (containerd's own fetch leases what it finds, too).
        worker.hold_blob(ctx, &digest).await?;
        if content::info(worker.channel(), ctx, &digest)
            .await?
            .is_some()
        {
            return Ok(());
        }
        tracing::debug!(image = %self.reference, layer = %digest, "fetching layer");
        let stream = self
            .registry
            .blob_stream(&self.repository, &digest)
            .await
            .map_err(|e| self.error(e))?;
        let stream = stream
            .map_ok(|bytes| bytes.to_vec())
            .map_err(|e| std::io::Error::other(e.to_string()));
        // As containerd labels what it pulls: a push to another repository of the registry
        // mounts the blob instead of uploading it.
        let source = HashMap::from([(
            format!(
                "{}{}",
                super::push::SOURCE_ANNOTATION,
                self.reference.registry()
            ),
            self.repository.clone(),
        )]);
        content::write_blob_stream(
            worker.channel(),
            ctx,
            &digest,
            layer.size() as i64,
            stream,
            source,
        )
        .await
        .map(drop)
    }

    fn error(&self, error: DistributionError) -> WorkerError {
        match error {
            DistributionError::Unauthorized => {
                unauthorized(RegistryOperation::Pull, &self.reference, &self.found)
            }
            other => registry_error(&self.reference, &other),
        }
    }
}

/// Streams a blob from the image's registry (or a mirror) into the content store unless it is
/// there already. Anonymous: a base image's layers are fetched again only after containerd lost
/// them, and a private one then needs its build's client again.
pub async fn fetch_blob(
    worker: &Worker,
    ctx: &CallContext,
    reference: &Reference,
    layer: &OciDescriptor,
) -> WorkerResult<()> {
    let hosts = worker.registry_hosts();
    let endpoints = hosts.endpoints(reference.registry(), reference.resolve_registry());
    let mut result = Ok(());
    for endpoint in &endpoints {
        let at = endpoint_reference(endpoint, reference);
        result = match Fetcher::new(endpoint, &at, Found::default()) {
            Ok(fetcher) => fetcher.fetch_layer(worker, ctx, layer).await,
            Err(error) => Err(error),
        };
        if result.is_ok() {
            break;
        }
    }
    result
}

/// The registry's 401 to `operation` on `reference`, naming where the credentials came from.
pub(super) fn unauthorized(
    operation: RegistryOperation,
    reference: &Reference,
    found: &Found,
) -> WorkerError {
    let host = auth_host(reference.resolve_registry());
    let reason = match &found.credentials {
        None => found.from.clone(),
        Some(c) if c.username.is_empty() => {
            format!("{host} refused the identity token from {}", found.from)
        }
        Some(c) => format!(
            "{host} refused the credentials of user {:?} from {}",
            c.username, found.from
        ),
    };
    WorkerError::Unauthorized {
        operation,
        reference: reference.whole(),
        reason,
    }
}

pub(super) fn registry_error(reference: &Reference, error: &DistributionError) -> WorkerError {
    WorkerError::Registry {
        reference: reference.whole(),
        reason: error.to_string(),
    }
}
