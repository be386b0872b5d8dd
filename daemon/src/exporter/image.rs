//! The `image` exporter: the result becomes an image in the host's containerd image store,
//! already unpacked (its snapshots are the build's own, named by chain ID).

use std::collections::BTreeMap;

use base64::Engine as _;
use oci_spec::image::{Config, ConfigBuilder};

use super::annotations::Annotations;
use super::tarball::TarballFormat;
use crate::oci::Platform;
use crate::solver::{Ref, SolveError};
use crate::worker::images::normalize_reference;
use crate::worker::Descriptor;
use crate::worker::{
    ImageWrite, IndexEntry, IndexWrite, LayerCompression, Lease, ManifestFormat, Worker,
    WrittenImage,
};

/// What to export for one platform: its result and the frontend's image config.
#[derive(Clone, Debug)]
pub struct PlatformResult {
    pub platform: Platform,
    pub result: Ref,
    pub config: Option<serde_json::Value>,
    /// `--export-cache type=inline`: the records to keep in the image config (BuildKit's
    /// `moby.buildkit.cache.v0`, already base64).
    pub inline_cache: Option<String>,
}

/// What an export wrote: the exporter response and the image's top descriptor.
pub struct Exported {
    pub response: BTreeMap<String, String>,
    pub top: Descriptor,
}

/// The exporter's options, from `--output type=image,...` attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageExport {
    /// Normalized image-store names.
    pub names: Vec<String>,
    /// `compression`, `compression-level`, `force-compression`.
    pub compression: LayerCompression,
    pub format: ManifestFormat,
    /// `push=true` (the `registry` exporter's default): sent to the registry of each name.
    pub push: bool,
    /// `store=false`: not named in the node's image store.
    pub store: bool,
    /// `name-canonical=true`: each name's `repository@digest` too.
    pub canonical: bool,
    /// `dangling-name-prefix`: a nameless image is stored as `<prefix>@<digest>`.
    pub dangling_prefix: Option<String>,
    /// The `oci` and `docker` exporters: the image goes to the client as a tarball.
    pub tarball: Option<TarballFormat>,
    /// The `annotation*` attributes.
    pub annotations: Annotations,
    /// Attributes accepted that cannot change what is written (`unpack=false`: nodekitd's
    /// images are unpacked either way), each warned about in the build.
    pub without_effect: Vec<String>,
}

/// The exporters that write an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageExporter {
    /// Into the node's image store.
    Image,
    /// Pushed (and stored).
    Registry,
    /// A tarball for the client.
    Oci,
    Docker,
}

impl ImageExporter {
    pub fn of(kind: &str) -> Option<ImageExporter> {
        match kind {
            "image" => Some(ImageExporter::Image),
            "registry" => Some(ImageExporter::Registry),
            "oci" => Some(ImageExporter::Oci),
            "docker" => Some(ImageExporter::Docker),
            _ => None,
        }
    }

    pub(super) fn tarball(self) -> Option<TarballFormat> {
        match self {
            ImageExporter::Oci => Some(TarballFormat::Oci),
            ImageExporter::Docker => Some(TarballFormat::Docker),
            _ => None,
        }
    }
}

impl ImageExport {
    /// Writes the image (a manifest, or an index over one per platform) into the content
    /// store and points `names` at it in the image store; returns the exporter response
    /// (`containerimage.digest`, ...). Every platform's snapshots stay (the cache holds them
    /// anyway), so the node's own platform is unpacked and the others run with `ctr run
    /// --platform` without an unpack.
    pub async fn write(
        &self,
        worker: &Worker,
        lease: &Lease,
        parts: &[PlatformResult],
        names: &[String],
    ) -> Result<Exported, SolveError> {
        let platforms: Vec<Platform> = parts.iter().map(|p| p.platform.clone()).collect();
        self.annotations.check_platforms(&platforms)?;
        if let [part] = parts {
            let written = self.write_manifest(worker, lease, part, names).await?;
            let mut response = self.response(&written.manifest);
            response.insert(
                "containerimage.config.digest".to_string(),
                written.config_digest.clone(),
            );
            return Ok(Exported {
                response,
                top: written.manifest,
            });
        }
        let mut entries = Vec::with_capacity(parts.len());
        for part in parts {
            let written = self.write_manifest(worker, lease, part, &[]).await?;
            entries.push(IndexEntry {
                manifest: written.manifest,
                platform: part.platform.clone(),
            });
        }
        let index = IndexWrite {
            names,
            entries: &entries,
            format: self.format,
            annotations: &self.annotations.index(),
            descriptor_annotations: &self.annotations.index_descriptor(),
        };
        let index = worker
            .write_index(lease, &index)
            .await
            .map_err(|e| SolveError::worker("exporting the image index", e))?;
        Ok(Exported {
            response: self.response(&index),
            top: index,
        })
    }

    /// The names the image gets once its digest is known: each name's `repository@digest`
    /// (`name-canonical`), or `<prefix>@<digest>` for a nameless one (`dangling-name-prefix`).
    pub fn digest_names(&self, digest: &str) -> Vec<String> {
        if !self.store {
            return Vec::new();
        }
        if self.names.is_empty() {
            return self
                .dangling_prefix
                .iter()
                .map(|prefix| format!("{prefix}@{digest}"))
                .collect();
        }
        if !self.canonical {
            return Vec::new();
        }
        self.names
            .iter()
            .filter_map(|name| normalize_reference(name).ok())
            .map(|r| format!("{}/{}@{digest}", r.registry(), r.repository()))
            .collect()
    }

    /// The names the image store gets (none with `store=false`).
    pub fn stored_names(&self) -> &[String] {
        if self.store {
            &self.names
        } else {
            &[]
        }
    }

    async fn write_manifest(
        &self,
        worker: &Worker,
        lease: &Lease,
        part: &PlatformResult,
        names: &[String],
    ) -> Result<WrittenImage, SolveError> {
        let (base_layers, layers) = futures::try_join!(
            self.base_layers(worker, lease, &part.result),
            self.new_layers(worker, lease, &part.result)
        )?;
        // A frontend's config (a Dockerfile's) is the image's; raw LLB gets a default PATH.
        let config = match part.config {
            Some(_) => None,
            None => Some(default_config()?),
        };
        let full_config = with_inline_cache(part.config.clone(), part.inline_cache.as_deref())?;
        let write = ImageWrite {
            names: names.to_vec(),
            base: part.result.base.as_deref(),
            platform: part.platform.clone(),
            layers,
            config,
            full_config,
            format: self.format,
            annotations: self.annotations.manifest(&part.platform),
            base_layers,
        };
        worker
            .write_image(lease, &write)
            .await
            .map_err(|e| SolveError::worker("exporting the image", e))
    }

    /// The exporter response for the image's top descriptor (a manifest or an index), its
    /// annotations included (the only place the registry exporter has for them).
    fn response(&self, top: &Descriptor) -> BTreeMap<String, String> {
        let mut descriptor = serde_json::json!({
            "mediaType": top.media_type,
            "digest": top.digest,
            "size": top.size,
        });
        if !top.annotations.is_empty() {
            let sorted: BTreeMap<_, _> = top.annotations.iter().collect();
            descriptor["annotations"] = serde_json::json!(sorted);
        }
        let mut response = BTreeMap::from([
            ("containerimage.digest".to_string(), top.digest.clone()),
            (
                "containerimage.descriptor".to_string(),
                base64::engine::general_purpose::STANDARD.encode(descriptor.to_string()),
            ),
        ]);
        if !self.names.is_empty() {
            response.insert("image.name".to_string(), self.names.join(","));
        }
        response
    }
}

/// BuildKit's config for a raw LLB result: just a default PATH.
/// The frontend's config with the inline cache under BuildKit's key.
fn with_inline_cache(
    config: Option<serde_json::Value>,
    inline: Option<&str>,
) -> Result<Option<serde_json::Value>, SolveError> {
    let Some(inline) = inline else {
        return Ok(config);
    };
    match config {
        Some(serde_json::Value::Object(mut fields)) => {
            fields.insert(cachestore::remote::INLINE_KEY.into(), inline.into());
            Ok(Some(serde_json::Value::Object(fields)))
        }
        _ => Err(SolveError::Unsupported(
            "cache export type=inline: nodekitd keeps an inline cache in the image config a frontend (dockerfile.v0) made; this build has none".into(),
        )),
    }
}

fn default_config() -> Result<Config, SolveError> {
    ConfigBuilder::default()
        .env(vec![crate::worker::exec::DEFAULT_PATH.to_string()])
        .build()
        .map_err(|e| SolveError::Other(format!("image config: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_names_are_canonical_names_or_the_dangling_prefix() {
        let digest = "sha256:aa";
        let export = |pairs: &[(&str, &str)]| {
            let attrs = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ImageExport::from_attrs(&attrs, ImageExporter::Image).unwrap()
        };
        let canonical = export(&[
            ("name", "app:1,r.example/t/x:2"),
            ("name-canonical", "true"),
        ]);
        assert_eq!(
            canonical.digest_names(digest),
            ["docker.io/library/app@sha256:aa", "r.example/t/x@sha256:aa"]
        );
        assert!(export(&[("name", "app:1")]).digest_names(digest).is_empty());
        let dangling = export(&[("dangling-name-prefix", "nodekit-dangling")]);
        assert_eq!(
            dangling.digest_names(digest),
            ["nodekit-dangling@sha256:aa"]
        );
        let named = export(&[("name", "app:1"), ("dangling-name-prefix", "p")]);
        assert!(named.digest_names(digest).is_empty());
        let unstored = export(&[
            ("name", "app:1"),
            ("name-canonical", "true"),
            ("store", "false"),
        ]);
        assert!(unstored.digest_names(digest).is_empty());
    }
}
