//! Store first, registry second.

use nodekit_oci::{self as oci, chain_ids, Platform};
use oci_spec::distribution::Reference;
use oci_spec::image::Descriptor as OciDescriptor;

use super::credentials::CredentialSource;
use super::manifest::{self, ImageManifestSet};
use super::pull;
use super::reference::{normalize_reference, store_name};
use super::store::get_image;
use crate::content;
use crate::error::WorkerResult;
use crate::Descriptor;
use crate::Worker;

/// Where a resolved image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageOrigin {
    /// Already in the host image store: no registry was contacted.
    ImageStore,
    /// Pulled from its registry into the image store.
    Registry,
}

/// An image resolved for one platform, its blobs in the content store.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The normalized image-store name, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    pub reference: Reference,
    /// What the name points at: an index or a manifest.
    pub target: Descriptor,
    pub platform: Platform,
    pub image: ImageManifestSet,
    pub origin: ImageOrigin,
}

impl ResolvedImage {
    pub fn diff_ids(&self) -> Vec<String> {
        self.image.config.rootfs().diff_ids().clone()
    }

    /// The chain ID of the whole layer stack: the name of its top snapshot (None for scratch).
    pub fn chain_id(&self) -> Option<String> {
        chain_ids(&self.diff_ids()).pop()
    }

    pub fn layers(&self) -> &[OciDescriptor] {
        self.image.manifest.layers()
    }
}

/// How a reference is resolved (BuildKit's `image.resolvemode` / `image-resolve-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolveMode {
    /// The image store when the image is there whole, else the registry.
    #[default]
    Default,
    /// Always ask the registry, so a moved tag is followed (the store is updated).
    Pull,
    /// Prefer the image store: the same as `Default` on a node, where the store is the cache.
    Local,
}

impl ResolveMode {
    /// From the wire value (`default`, `pull`, `local`; BuildKit also sends `forcepull` and
    /// `preferlocal`); anything else is refused.
    pub fn parse(value: &str) -> Result<ResolveMode, String> {
        match value {
            "" | "default" => Ok(ResolveMode::Default),
            "pull" | "forcepull" => Ok(ResolveMode::Pull),
            "local" | "preferlocal" => Ok(ResolveMode::Local),
            other => Err(format!(
                "invalid resolve mode {other:?} (default, pull or local)"
            )),
        }
    }
}

/// Resolves `text` for `platform`: from the image store when it is there whole (unless `mode`
/// is `Pull`), else from the registry (the pulled image is recorded in the store for the
/// kubelet too).
pub async fn resolve(
    worker: &Worker,
    text: &str,
    platform: &Platform,
    mode: ResolveMode,
    credentials: &dyn CredentialSource,
) -> WorkerResult<ResolvedImage> {
    let reference = normalize_reference(text)?;
    let name = store_name(&reference);
    if mode == ResolveMode::Pull {
        tracing::info!(image = %name, %platform, "resolve mode pull: asking the registry");
        return pull::pull(worker, &reference, &name, platform, credentials).await;
    }
    if let Some(found) = resolve_in_store(worker, &reference, &name, platform).await? {
        tracing::debug!(image = %name, "resolved from the image store");
        return Ok(found);
    }
    tracing::info!(image = %name, %platform, "not in the image store; pulling");
    pull::pull(worker, &reference, &name, platform, credentials).await
}

/// The image `name` whose manifest is `manifest`, from blobs in the content store (a cached
/// result's base, whose blobs the cache lease holds); `None` when a blob is gone.
pub async fn from_content(
    worker: &Worker,
    name: &str,
    manifest: Descriptor,
    platform: &Platform,
) -> WorkerResult<Option<ResolvedImage>> {
    let reference = normalize_reference(name)?;
    let Some(image) = read_platform_image(worker, name, &manifest, platform).await? else {
        return Ok(None);
    };
    Ok(Some(ResolvedImage {
        name: name.to_string(),
        reference,
        target: manifest,
        platform: platform.clone(),
        image,
        origin: ImageOrigin::ImageStore,
    }))
}

/// The image as the store has it, or `None` when any blob it needs is missing.
async fn resolve_in_store(
    worker: &Worker,
    reference: &Reference,
    name: &str,
    platform: &Platform,
) -> WorkerResult<Option<ResolvedImage>> {
    let Some(target) = store_target(worker, reference, name).await? else {
        return Ok(None);
    };
    let Some(image) = read_platform_image(worker, name, &target, platform).await? else {
        return Ok(None);
    };
    Ok(Some(ResolvedImage {
        name: name.to_string(),
        reference: reference.clone(),
        target,
        platform: platform.clone(),
        image,
        origin: ImageOrigin::ImageStore,
    }))
}

/// The store's target for `name`; for a digest reference, also the blob itself if present.
async fn store_target(
    worker: &Worker,
    reference: &Reference,
    name: &str,
) -> WorkerResult<Option<Descriptor>> {
    if let Some(record) = get_image(worker.channel(), worker.ctx(), name).await? {
        return Ok(Some(record.target));
    }
    let Some(digest) = reference.digest() else {
        return Ok(None);
    };
    let Some(info) = content::info(worker.channel(), worker.ctx(), digest).await? else {
        return Ok(None);
    };
    let bytes = content::read_blob(worker.channel(), worker.ctx(), digest).await?;
    Ok(
        manifest::media_type_of(&bytes).map(|media_type| Descriptor {
            media_type,
            digest: info.digest,
            size: info.size,
            annotations: Default::default(),
        }),
    )
}

async fn read_platform_image(
    worker: &Worker,
    name: &str,
    target: &Descriptor,
    platform: &Platform,
) -> WorkerResult<Option<ImageManifestSet>> {
    if let Some(known) = worker.parsed_images().get(&target.digest, platform) {
        return Ok(Some(known));
    }
    let image = read_platform_blobs(worker, name, target, platform).await?;
    if let Some(image) = &image {
        worker
            .parsed_images()
            .insert(&target.digest, platform, image);
    }
    Ok(image)
}

/// The index (if the target is one), manifest and config for `platform`, or `None` when a
/// blob is not in the content store.
async fn read_platform_blobs(
    worker: &Worker,
    name: &str,
    target: &Descriptor,
    platform: &Platform,
) -> WorkerResult<Option<ImageManifestSet>> {
    let (channel, ctx) = (worker.channel(), worker.ctx());
    let mut manifest_desc = (
        target.digest.clone(),
        target.media_type.clone(),
        target.size,
    );
    // A lone manifest serves every platform (see pull's note); an index must offer it.
    if oci::is_index(&target.media_type) {
        let Some(bytes) = read_if_present(worker, &target.digest).await? else {
            return Ok(None);
        };
        let index = manifest::parse_index(name, &bytes)?;
        let chosen = manifest::select_manifest(name, &index, platform)?;
        manifest_desc = (
            chosen.digest().to_string(),
            chosen.media_type().to_string(),
            chosen.size() as i64,
        );
    }
    let Some(bytes) = read_if_present(worker, &manifest_desc.0).await? else {
        return Ok(None);
    };
    let parsed = manifest::parse_manifest(name, &bytes)?;
    let config_digest = parsed.config().digest().to_string();
    if content::info(channel, ctx, &config_digest).await?.is_none() {
        return Ok(None);
    }
    let config_bytes = content::read_blob(channel, ctx, &config_digest).await?;
    let config = manifest::parse_config(name, &config_bytes)?;
    Ok(Some(ImageManifestSet {
        manifest_digest: manifest_desc.0,
        manifest_media_type: manifest_desc.1,
        manifest_size: manifest_desc.2,
        manifest: parsed,
        config_digest,
        config,
    }))
}

async fn read_if_present(worker: &Worker, digest: &str) -> WorkerResult<Option<Vec<u8>>> {
    if content::info(worker.channel(), worker.ctx(), digest)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    content::read_blob(worker.channel(), worker.ctx(), digest)
        .await
        .map(Some)
}
