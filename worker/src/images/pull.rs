//! Pulling from a registry (token auth, HTTPS; plain HTTP for configured hosts and loopback)
//! straight into containerd's content store, then recording the image for the kubelet too.

use std::collections::HashMap;

use futures::TryStreamExt;
use nodekit_oci::{self as oci, sha256_digest, Platform};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::Descriptor as OciDescriptor;

use super::credentials::{self, auth_host, CredentialSource, Found};
use super::hosts::Endpoint;
use super::manifest::{self, ImageManifestSet};
use super::resolve::{ImageOrigin, ResolvedImage};
use super::store::{put_image_record, ImageRecord};
use crate::content;
use crate::context::CallContext;
use crate::error::{WorkerError, WorkerResult};
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
    lease.release().await?;
    result.map(|mut image| {
        image.reference = reference.clone();
        image
    })
}

/// The registry itself is asked with the reference as written; a mirror with its own host.
fn endpoint_reference(endpoint: &Endpoint, reference: &Reference) -> Reference {
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
    let (reference, found) = (source.reference, source.found);
    let client = source.endpoint.client()?;
    let auth = match &found.credentials {
        Some(c) => RegistryAuth::Basic(c.username.clone(), c.secret.clone()),
        None => RegistryAuth::Anonymous,
    };
    let unavailable = |error: WorkerError| match error {
        WorkerError::Unauthorized { .. } => error,
        other => WorkerError::ImageUnavailable {
            reference: name.to_string(),
            namespace: worker.ctx().namespace().to_string(),
            reason: other.to_string(),
        },
    };
    let (top_bytes, top_digest) = fetch_manifest(&client, &auth, found, reference)
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
        let by_digest = reference.clone_with_digest(chosen.digest().to_string());
        let (bytes, digest) = fetch_manifest(&client, &auth, found, &by_digest).await?;
        (bytes, digest, chosen.media_type().to_string(), Some(index))
    } else {
        (
            top_bytes.clone(),
            top_digest.clone(),
            top_type.clone(),
            None,
        )
    };
    let parsed = manifest::parse_manifest(name, &manifest_bytes)?;
    let config_digest = parsed.config().digest().to_string();
    let config_bytes = fetch_small_blob(&client, reference, &config_digest).await?;
    let config = manifest::parse_config(name, &config_bytes)?;
    manifest::check_config_platform(name, &config, platform)?;

    for layer in parsed.layers() {
        fetch_blob_with(worker, ctx, &client, reference, layer).await?;
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

/// Fetches a manifest and checks its bytes against the digest asked for (if any). The client
/// keeps the authorization it gets here for the image's blobs.
async fn fetch_manifest(
    client: &Client,
    auth: &RegistryAuth,
    found: &Found,
    reference: &Reference,
) -> WorkerResult<(Vec<u8>, String)> {
    let (bytes, _) = client
        .pull_manifest_raw(reference, auth, oci::MANIFEST_ACCEPT)
        .await
        .map_err(|e| {
            if is_unauthorized(&e) {
                unauthorized(reference, found)
            } else {
                registry_error(reference, e)
            }
        })?;
    let digest = sha256_digest(&bytes);
    if let Some(wanted) = reference.digest() {
        if wanted != digest {
            return Err(WorkerError::Registry {
                reference: reference.whole(),
                reason: format!("manifest digest mismatch: asked for {wanted}, got {digest}"),
            });
        }
    }
    Ok((bytes.to_vec(), digest))
}

async fn fetch_small_blob(
    client: &Client,
    reference: &Reference,
    digest: &str,
) -> WorkerResult<Vec<u8>> {
    let mut bytes = Vec::new();
    client
        .pull_blob(reference, digest, &mut bytes)
        .await
        .map_err(|e| registry_error(reference, e))?;
    Ok(bytes)
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
        result = match endpoint.client() {
            Ok(client) => fetch_blob_with(worker, ctx, &client, &at, layer).await,
            Err(error) => Err(error),
        };
        if result.is_ok() {
            break;
        }
    }
    result
}

async fn fetch_blob_with(
    worker: &Worker,
    ctx: &CallContext,
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
) -> WorkerResult<()> {
    let digest = layer.digest().to_string();
    if content::info(worker.channel(), ctx, &digest)
        .await?
        .is_some()
    {
        return Ok(());
    }
    tracing::debug!(image = %reference, layer = %digest, "fetching layer");
    let sized = client
        .pull_blob_stream(reference, digest.as_str())
        .await
        .map_err(|e| registry_error(reference, e))?;
    let stream = sized.stream.map_ok(|bytes| bytes.to_vec());
    content::write_blob_stream(
        worker.channel(),
        ctx,
        &digest,
        layer.size() as i64,
        stream,
        HashMap::new(),
    )
    .await
}

/// Whether the registry answered 401 (oci-client reports it in several shapes).
fn is_unauthorized(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => *code == 401,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized)),
        _ => false,
    }
}

fn unauthorized(reference: &Reference, found: &Found) -> WorkerError {
    let host = auth_host(reference.resolve_registry());
    let reason = match &found.credentials {
        None => found.from.clone(),
        Some(c) => format!(
            "{host} refused the credentials of user {:?} from {}",
            c.username, found.from
        ),
    };
    WorkerError::Unauthorized {
        reference: reference.whole(),
        reason,
    }
}

/// The error with its causes (a TLS failure sits several sources below "error sending request").
fn registry_error(reference: &Reference, error: impl std::error::Error) -> WorkerError {
    let mut reason = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        cause = inner.source();
    }
    WorkerError::Registry {
        reference: reference.whole(),
        reason,
    }
}
