//! The image exporters' attributes (`--output type=image,...`): each one honoured, or refused
//! by name.

use std::collections::BTreeMap;

use super::annotations::{looks_like_annotation, Annotations};
use super::image::{ImageExport, ImageExporter};
use crate::solver::SolveError;
use crate::worker::images::normalize_reference;
use crate::worker::{Compression, LayerCompression, ManifestFormat};

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
        let names = names(attrs)?;
        let push = flag(attrs, "push", exporter == ImageExporter::Registry)?;
        let store = flag(attrs, "store", tarball.is_none())?;
        let compression = layer_compression(attrs, push || tarball.is_some())?;
        let oci_default = exporter != ImageExporter::Docker;
        let format = if flag(attrs, "oci-mediatypes", oci_default)? {
            ManifestFormat::Oci
        } else {
            ManifestFormat::Docker
        };
        let annotations = Annotations::from_attrs(attrs)?;
        annotations.check_format(format)?;
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
            annotations,
            without_effect: without_effect(attrs)?,
        })
    }
}

/// The attributes given that change nothing here, as `key=value`.
fn without_effect(attrs: &BTreeMap<String, String>) -> Result<Vec<String>, SolveError> {
    let unpacked = attrs.contains_key("unpack") && !flag(attrs, "unpack", true)?;
    Ok(unpacked
        .then(|| "unpack=false".to_string())
        .into_iter()
        .collect())
}

/// `name`: a comma-separated list, each normalized.
fn names(attrs: &BTreeMap<String, String>) -> Result<Vec<String>, SolveError> {
    attrs
        .get("name")
        .map(|list| list.split(',').map(str::trim).filter(|n| !n.is_empty()))
        .into_iter()
        .flatten()
        .map(|name| {
            normalize_reference(name)
                .map(|r| r.whole())
                .map_err(|e| SolveError::InvalidDefinition(format!("image exporter: {e}")))
        })
        .collect()
}

/// `compression`, `compression-level` and `force-compression`. Layers that never leave the
/// node are not worth compressing, so an image only stored on the node is uncompressed when
/// none of the three is given; a level or forcing asks for compression, and without a
/// `compression` that is BuildKit's default, gzip.
fn layer_compression(
    attrs: &BTreeMap<String, String>,
    leaves_node: bool,
) -> Result<LayerCompression, SolveError> {
    let invalid = |why: String| SolveError::InvalidDefinition(format!("image exporter: {why}"));
    let level = match attrs.get("compression-level").map(String::as_str) {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<i32>()
                .map_err(|_| invalid(format!("compression-level={text} is not an integer")))?,
        ),
    };
    // An empty value is true here, as in BuildKit's compression.ParseAttributes.
    let force = match attrs.get("force-compression").map(String::as_str) {
        Some("") => true,
        _ => flag(attrs, "force-compression", false)?,
    };
    let compression = match attrs.get("compression").map(String::as_str) {
        None if leaves_node || level.is_some() || force => Compression::Gzip,
        None => Compression::Uncompressed,
        Some(text) => Compression::parse(text).ok_or_else(|| {
            invalid(format!(
                "unsupported compression {text:?} (uncompressed, gzip or zstd)"
            ))
        })?,
    };
    let layers = LayerCompression {
        force,
        ..LayerCompression::new(compression)
    };
    match level {
        None => Ok(layers),
        Some(level) => layers
            .with_level(level)
            .map_err(|why| invalid(format!("compression-level={level}: {why}"))),
    }
}

/// A boolean attribute (`true`, `1`, `false`, `0`; absent or empty: `default`).
pub(super) fn flag(
    attrs: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, SolveError> {
    match attrs.get(key).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(SolveError::InvalidDefinition(format!(
            "image exporter: {key}={other} is not a boolean"
        ))),
    }
}

/// The image exporter's attributes nodekitd does not implement, refused by name unless they
/// ask for what it does anyway (`push=false`, `store=true`); unknown ones too, so a misspelt
/// `name` is not an image stored without one.
fn refuse_unsupported_attr(key: &str, value: &str) -> Result<(), SolveError> {
    let is_true = || matches!(value, "true" | "1");
    let unsupported = match key {
        "name" | "compression" | "oci-mediatypes" => false,
        "compression-level" | "force-compression" => false,
        // Deprecated and without effect upstream too.
        "buildinfo" | "buildinfo-attrs" => false,
        "push" | "store" => false,
        "name-canonical" | "dangling-name-prefix" => false,
        // The image's snapshots are the build's own: it is unpacked either way, the same
        // image.
        "unpack" => false,
        // Read (and a malformed one refused) with the annotations.
        _ if looks_like_annotation(key) => false,
        "push-by-digest" | "insecure" | "registry.insecure" | "oci-artifact"
        | "rewrite-timestamp" => is_true(),
        "source-date-epoch" => !value.is_empty(),
        _ => {
            return Err(SolveError::Unsupported(format!(
                "image exporter: unknown attribute {key:?} (nodekitd knows name, push, store, unpack, compression, compression-level, force-compression, oci-mediatypes, name-canonical, dangling-name-prefix, annotation*)"
            )))
        }
    };
    if unsupported {
        return Err(SolveError::Unsupported(format!(
            "image exporter: {key}={value} is not supported by nodekitd yet"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::tarball::TarballFormat;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn export(pairs: &[(&str, &str)]) -> Result<ImageExport, String> {
        ImageExport::from_attrs(&attrs(pairs), ImageExporter::Image).map_err(|e| e.to_string())
    }

    #[test]
    fn tarball_exporters_default_to_gzip_unstored_and_docker_media_types_for_docker() {
        let docker =
            ImageExport::from_attrs(&attrs(&[("name", "a:1")]), ImageExporter::Docker).unwrap();
        assert_eq!(docker.tarball, Some(TarballFormat::Docker));
        assert_eq!(
            (docker.compression.compression, docker.format, docker.store),
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
        assert!(export(&[("tar", "true")]).is_err());
    }

    #[test]
    fn attributes_nodekitd_does_not_implement_are_refused_by_name() {
        for (key, value) in [
            ("push-by-digest", "true"),
            ("annotation-layer.org.opencontainers.image.title", "x"),
            ("annotationx", "x"),
            ("source-date-epoch", "3"),
            ("nmae", "app:1"),
        ] {
            let error = export(&[(key, value)]).err().unwrap_or_default();
            assert!(error.contains(key), "{key}={value}: {error:?}");
        }
        for (key, value) in [("push", "false"), ("store", "false"), ("unpack", "true")] {
            assert!(export(&[(key, value)]).is_ok(), "{key}={value}");
        }
        let unpack = export(&[("unpack", "false")]).map(|e| e.without_effect);
        assert_eq!(unpack.ok(), Some(vec!["unpack=false".to_string()]));
        let unpack = export(&[("unpack", "true")]).map(|e| e.without_effect);
        assert_eq!(unpack.ok(), Some(Vec::new()));
    }

    #[test]
    fn names_are_normalized_and_defaults_are_node_local() {
        let export = export(&[("name", "app:1, nodekit.test/x")]).unwrap();
        assert_eq!(
            export.names,
            ["docker.io/library/app:1", "nodekit.test/x:latest"]
        );
        assert_eq!(
            export.compression,
            LayerCompression::new(Compression::Uncompressed)
        );
        assert_eq!(export.format, ManifestFormat::Oci);
        assert_eq!(export.annotations, Annotations::default());
    }

    #[test]
    fn options_are_honoured_and_bad_ones_rejected() {
        let zstd = export(&[("compression", "zstd"), ("oci-mediatypes", "false")]).unwrap();
        assert_eq!(
            (zstd.compression.compression, zstd.format),
            (Compression::Zstd, ManifestFormat::Docker)
        );
        assert!(export(&[("compression", "lz4")]).is_err());
        assert!(export(&[("push", "true")]).is_err());
        assert!(export(&[("name", "Bad Name")]).is_err());
    }

    #[test]
    fn levels_and_forcing_are_read_and_checked() {
        let nine = export(&[("compression-level", "9")]).unwrap().compression;
        assert_eq!(
            (nine.compression, nine.level, nine.force),
            (Compression::Gzip, Some(9), false),
            "a level asks for compression: gzip, BuildKit's default"
        );
        let forced = export(&[("compression", "zstd"), ("force-compression", "")]).unwrap();
        assert_eq!(
            (forced.compression.compression, forced.compression.force),
            (Compression::Zstd, true)
        );
        let zstd = export(&[("compression", "zstd"), ("compression-level", "19")]).unwrap();
        assert_eq!(zstd.compression.level, Some(19));
        for (pairs, says) in [
            (
                &[("compression-level", "10")][..],
                "compression-level=10: out of range for gzip (0-9)",
            ),
            (
                &[("compression", "zstd"), ("compression-level", "23")],
                "out of range for zstd (0-22)",
            ),
            (
                &[("compression", "uncompressed"), ("compression-level", "1")],
                "has no levels",
            ),
            (
                &[("compression-level", "high")],
                "compression-level=high is not an integer",
            ),
            (
                &[("force-compression", "maybe")],
                "force-compression=maybe is not a boolean",
            ),
        ] {
            let error = export(pairs).err().unwrap_or_default();
            assert!(error.contains(says), "{pairs:?}: {error}");
        }
        let plain = export(&[("force-compression", "false")])
            .unwrap()
            .compression;
        assert_eq!(plain, LayerCompression::new(Compression::Uncompressed));
    }

    #[test]
    fn annotations_are_read_and_docker_media_types_refuse_descriptor_ones() {
        let set = export(&[("annotation.k", "v"), ("annotation-index.i", "w")]).unwrap();
        let native = crate::oci::Platform::native();
        assert_eq!(set.annotations.manifest(&native).manifest["k"], "v");
        assert_eq!(set.annotations.index()["i"], "w");
        let docker = [
            ("oci-mediatypes", "false"),
            ("annotation-manifest-descriptor.k", "v"),
        ];
        let error = export(&docker).err().unwrap_or_default();
        assert!(
            error.contains("annotation-manifest-descriptor.k"),
            "{error}"
        );
        assert!(export(&[("oci-mediatypes", "false"), ("annotation.k", "v")]).is_ok());
    }
}
