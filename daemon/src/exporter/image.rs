//! The `image` exporter: the result becomes an image in the host's containerd image store,
//! already unpacked (its snapshots are the build's own, named by chain ID).

use std::collections::BTreeMap;

use base64::Engine as _;
use oci_spec::image::{Config, ConfigBuilder};

use super::tarball::TarballFormat;
use crate::oci::chain_ids;
use crate::oci::Platform;
use crate::solver::{Layer, Ref, SolveError};
use crate::worker::images::normalize_reference;
use crate::worker::Descriptor;
use crate::worker::{
    CommittedLayer, Compression, ImageWrite, IndexEntry, IndexWrite, Lease, ManifestFormat,
    NewLayer, Worker, WrittenImage,
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
    pub compression: Compression,
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

    fn tarball(self) -> Option<TarballFormat> {
        match self {
            ImageExporter::Oci => Some(TarballFormat::Oci),
            ImageExporter::Docker => Some(TarballFormat::Docker),
            _ => None,
        }
    }
}

impl ImageExport {
    /// The exporter's options; `push` defaults to true for `registry`, `store` to false for a
    /// tarball, `oci-mediatypes` to false for `docker`.
    pub fn from_attrs(
        attrs: &BTreeMap<String, String>,
        exporter: ImageExporter,
    ) -> Result<ImageExport, SolveError> {
        let tarball = exporter.tarball();
        for (key, value) in attrs {
            if tarball.is_some() && key == "tar" {
                if !flag(attrs, "tar", true)? {
                    return Err(SolveError::Unsupported(
                        "tar=false (the layout into the client's content store) is not supported by nodekitd yet".into(),
                    ));
                }
                continue;
            }
            refuse_unsupported_attr(key, value)?;
        }
        let push_default = exporter == ImageExporter::Registry;
        let names = attrs
            .get("name")
            .map(|list| list.split(',').map(str::trim).filter(|n| !n.is_empty()))
            .into_iter()
            .flatten()
            .map(|name| {
                normalize_reference(name)
                    .map(|r| r.whole())
                    .map_err(|e| SolveError::InvalidDefinition(format!("image exporter: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let push = flag(attrs, "push", push_default)?;
        let store = flag(attrs, "store", tarball.is_none())?;
        // Layers that never leave the node are not worth compressing: nodekit's default.
        let compression = match attrs.get("compression").map(String::as_str) {
            None if push || tarball.is_some() => Compression::Gzip,
            None => Compression::Uncompressed,
            Some(text) => Compression::parse(text).ok_or_else(|| {
                SolveError::InvalidDefinition(format!(
                    "image exporter: unsupported compression {text:?} (uncompressed, gzip or zstd)"
                ))
            })?,
        };
        let oci_default = exporter != ImageExporter::Docker;
        let format = if flag(attrs, "oci-mediatypes", oci_default)? {
            ManifestFormat::Oci
        } else {
            ManifestFormat::Docker
        };
        if push && names.is_empty() {
            return Err(SolveError::InvalidDefinition(
                "image exporter: push=true needs a name to push to".into(),
            ));
        }
        let dangling_prefix = attrs
            .get("dangling-name-prefix")
            .filter(|p| !p.is_empty())
            .cloned();
        Ok(ImageExport {
            names,
            compression,
            format,
            push,
            store,
            canonical: flag(attrs, "name-canonical", false)?,
            dangling_prefix,
            tarball,
        })
    }

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
            annotations: &BTreeMap::new(),
            descriptor_annotations: &BTreeMap::new(),
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
        let layers = self.new_layers(worker, lease, &part.result).await?;
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
            annotations: Default::default(),
            base_layers: None,
        };
        worker
            .write_image(lease, &write)
            .await
            .map_err(|e| SolveError::worker("exporting the image", e))
    }

    /// The exporter response for the image's top descriptor (a manifest or an index).
    fn response(&self, top: &Descriptor) -> BTreeMap<String, String> {
        let descriptor = serde_json::json!({
            "mediaType": top.media_type,
            "digest": top.digest,
            "size": top.size,
        });
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

    /// The layers above the base image: built ones compressed as asked, image layers (a merge
    /// can stack another image's) as their registry blobs.
    async fn new_layers(
        &self,
        worker: &Worker,
        lease: &Lease,
        result: &Ref,
    ) -> Result<Vec<NewLayer>, SolveError> {
        let base_len = result.base.as_ref().map_or(0, |b| b.layers().len());
        let diff_ids: Vec<&str> = result.layers.iter().map(Layer::diff_id).collect();
        let chains = chain_ids(&diff_ids);
        let layers = result.layers.iter().enumerate().skip(base_len);
        // Built layers are checked (and written, if nothing needed them before) side by side.
        let chains = &chains;
        let layers = layers.map(|(index, layer)| async move {
            let committed = match layer {
                Layer::Built(built) => CommittedLayer {
                    blob: self.built_blob(worker, lease, built).await?,
                    ..built.clone()
                },
                Layer::Image(image) => CommittedLayer {
                    chain_id: chains[index].clone(),
                    parent: index.checked_sub(1).map(|p| chains[p].clone()),
                    diff_id: image.diff_id.clone(),
                    blob: layer.to_blob().blob,
                    created_ms: 0,
                },
            };
            Ok::<_, SolveError>(NewLayer {
                layer: committed,
                created_by: "nodekit build step".into(),
            })
        });
        futures::future::try_join_all(layers).await
    }

    /// The blob of a layer a step built, written now if nothing needed it before, then
    /// compressed as asked.
    async fn built_blob(
        &self,
        worker: &Worker,
        lease: &Lease,
        layer: &CommittedLayer,
    ) -> Result<Descriptor, SolveError> {
        worker
            .ensure_layer_blob(lease, &layer.chain_id, &layer.blob)
            .await
            .map_err(|e| SolveError::worker("writing a layer", e))?;
        worker
            .compress_layer(lease, &layer.blob, self.compression)
            .await
            .map_err(|e| SolveError::worker("compressing a layer", e))
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

/// A boolean attribute (`true`, `1`, `false`, `0`; absent: `default`).
fn flag(attrs: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool, SolveError> {
    match attrs.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(SolveError::InvalidDefinition(format!(
            "image exporter: {key}={other} is not a boolean"
        ))),
    }
}

fn default_config() -> Result<Config, SolveError> {
    ConfigBuilder::default()
        .env(vec![crate::worker::exec::DEFAULT_PATH.to_string()])
        .build()
        .map_err(|e| SolveError::Other(format!("image config: {e}")))
}

/// The image exporter's attributes nodekitd does not implement, refused by name unless they
/// ask for what it does anyway (`push=false`, `store=true`); unknown ones too, so a misspelt
/// `name` is not an image stored without one.
fn refuse_unsupported_attr(key: &str, value: &str) -> Result<(), SolveError> {
    let is_true = || matches!(value, "true" | "1");
    let unsupported = match key {
        "name" | "compression" | "oci-mediatypes" => false,
        // Deprecated and without effect upstream too.
        "buildinfo" | "buildinfo-attrs" => false,
        "push" | "store" => false,
        "name-canonical" | "dangling-name-prefix" => false,
        // The image's snapshots are the build's own: it is unpacked either way, the same
        // image.
        "unpack" => false,
        "push-by-digest" | "insecure" | "registry.insecure" | "oci-artifact"
        | "force-compression" | "rewrite-timestamp" => is_true(),
        "compression-level" | "source-date-epoch" => !value.is_empty(),
        _ if key.starts_with("annotation") => true,
        _ => {
            return Err(SolveError::Unsupported(format!(
                "image exporter: unknown attribute {key:?} (nodekitd knows name, compression, oci-mediatypes)"
            )))
        }
    };
    if unsupported {
        return Err(SolveError::Unsupported(format!(
            "image exporter: {key}={value} is not supported by nodekitd yet (images are stored, unpacked, in the node's image store)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarball_exporters_default_to_gzip_unstored_and_docker_media_types_for_docker() {
        let docker =
            ImageExport::from_attrs(&attrs(&[("name", "a:1")]), ImageExporter::Docker).unwrap();
        assert_eq!(docker.tarball, Some(TarballFormat::Docker));
        assert_eq!(
            (docker.compression, docker.format, docker.store),
            (Compression::Gzip, ManifestFormat::Docker, false)
        );
        let oci = ImageExport::from_attrs(&attrs(&[("tar", "true")]), ImageExporter::Oci).unwrap();
        assert_eq!(
            (oci.format, oci.tarball),
            (ManifestFormat::Oci, Some(TarballFormat::Oci))
        );
        let error = ImageExport::from_attrs(&attrs(&[("tar", "false")]), ImageExporter::Oci)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("tar=false"), "{error}");
        assert!(ImageExport::from_attrs(&attrs(&[("tar", "true")]), ImageExporter::Image).is_err());
    }

    #[test]
    fn digest_names_are_canonical_names_or_the_dangling_prefix() {
        let digest = "sha256:aa";
        let export = |pairs: &[(&str, &str)]| {
            ImageExport::from_attrs(&attrs(pairs), ImageExporter::Image).unwrap()
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

    #[test]
    fn attributes_nodekitd_does_not_implement_are_refused_by_name() {
        for (key, value) in [
            ("push-by-digest", "true"),
            ("annotation.org.opencontainers.image.title", "x"),
            ("compression-level", "3"),
            ("nmae", "app:1"),
        ] {
            let error = ImageExport::from_attrs(&attrs(&[(key, value)]), ImageExporter::Image)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(key), "{key}={value}: {error:?}");
        }
        for (key, value) in [("push", "false"), ("store", "false"), ("unpack", "true")] {
            assert!(
                ImageExport::from_attrs(&attrs(&[(key, value)]), ImageExporter::Image).is_ok(),
                "{key}={value}"
            );
        }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_are_normalized_and_defaults_are_node_local() {
        let export = ImageExport::from_attrs(
            &attrs(&[("name", "app:1, nodekit.test/x")]),
            ImageExporter::Image,
        )
        .unwrap();
        assert_eq!(
            export.names,
            ["docker.io/library/app:1", "nodekit.test/x:latest"]
        );
        assert_eq!(export.compression, Compression::Uncompressed);
        assert_eq!(export.format, ManifestFormat::Oci);
    }

    #[test]
    fn options_are_honoured_and_bad_ones_rejected() {
        let export = ImageExport::from_attrs(
            &attrs(&[("compression", "zstd"), ("oci-mediatypes", "false")]),
            ImageExporter::Image,
        )
        .unwrap();
        assert_eq!(
            (export.compression, export.format),
            (Compression::Zstd, ManifestFormat::Docker)
        );
        assert!(
            ImageExport::from_attrs(&attrs(&[("compression", "lz4")]), ImageExporter::Image)
                .is_err()
        );
        assert!(
            ImageExport::from_attrs(&attrs(&[("push", "true")]), ImageExporter::Image).is_err()
        );
        assert!(
            ImageExport::from_attrs(&attrs(&[("name", "Bad Name")]), ImageExporter::Image).is_err()
        );
    }
}
