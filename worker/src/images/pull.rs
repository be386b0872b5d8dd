//! Pulling from a registry (token auth, HTTPS; plain HTTP for configured hosts and loopback)
//! straight into containerd's content store, then recording the image for the kubelet too.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use nodekit_oci::{self as oci, sha256_digest, Platform};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::Descriptor as OciDescriptor;

use super::credentials::{self, auth_host, CredentialSource, Found};
use super::manifest::{self, ImageManifestSet};
use super::resolve::{ImageOrigin, ResolvedImage};
use super::store::{put_image_record, ImageRecord};
use crate::content;
use crate::context::CallContext;
use crate::error::{WorkerError, WorkerResult};
use crate::Descriptor;
use crate::Worker;

/// How registries are reached: over plain HTTP for the hosts listed (`[registry."host"] http =
/// true`; loopback always is), with credentials from nodekitd's own docker config when a
/// build's client has none.
#[derive(Clone, Debug, Default)]
pub struct RegistryHosts {
    pub plain_http: Vec<String>,
    pub auth_file: Option<std::path::PathBuf>,
}

impl RegistryHosts {
    fn client_for(&self, registry: &str) -> Client {
        let mut plain = self.plain_http.clone();
        if is_loopback(registry) {
            plain.push(registry.to_string());
        }
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            ..Default::default()
        })
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) async fn pull(
    worker: &Worker,
    reference: &Reference,
    name: &str,
    platform: &Platform,
    client_credentials: &dyn CredentialSource,
) -> WorkerResult<ResolvedImage> {
    let host = auth_host(reference.resolve_registry());
    let auth_file = worker.registry_hosts().auth_file.as_deref();
    let found = credentials::lookup(client_credentials, auth_file, host).await;
    let lease = worker.lease("pull").await?;
    let result =
        pull_under_lease(worker, &lease.context(), reference, name, platform, &found).await;
    lease.release().await?;
    result
}

async fn pull_under_lease(
    worker: &Worker,
    ctx: &CallContext,
    reference: &Reference,
    name: &str,
    platform: &Platform,
    found: &Found,
) -> WorkerResult<ResolvedImage> {
    let client = worker
        .registry_hosts()
        .client_for(reference.resolve_registry());
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

/// Streams a blob from the image's registry into the content store unless it is there already.
pub async fn fetch_blob(
    worker: &Worker,
    ctx: &CallContext,
    reference: &Reference,
    layer: &OciDescriptor,
) -> WorkerResult<()> {
    let client = worker
        .registry_hosts()
        .client_for(reference.resolve_registry());
    fetch_blob_with(worker, ctx, &client, reference, layer).await
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

fn registry_error(reference: &Reference, error: impl std::fmt::Display) -> WorkerError {
    WorkerError::Registry {
        reference: reference.whole(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries_are_recognised() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["registry.example.com", "10.0.0.1:5000", "docker.io"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
