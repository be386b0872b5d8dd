//! `--export-cache` / `--import-cache` as a Solve request carries them (`CacheOptions`), read
//! into typed requests the way buildkitd reads them (facts: `docs/buildkit-remote-cache.md` §5):
//! the pre-v0.11 fields become `registry` entries, every `inline` after the first is dropped,
//! two exports to the same place fail the build, an unknown type or a bad attribute fails it
//! naming them (before anything runs). An import's problem is that import's alone: buildkitd
//! reports it on the import's step and builds without it.

use std::collections::{BTreeMap, HashMap};

use nodekit_oci::Reference;
use nodekit_proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry};

/// Where a cache export goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportTarget {
    /// A registry reference (normalized, `:latest` when it has no tag or digest).
    Registry { reference: String },
    /// A directory of the client's, through its session (`local:<dest>`).
    Local { dest: String },
    /// Into the config of the image the build exports.
    Inline,
}

impl ExportTarget {
    /// The type's name, as `--export-cache type=` gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            ExportTarget::Registry { .. } => "registry",
            ExportTarget::Local { .. } => "local",
            ExportTarget::Inline => "inline",
        }
    }
}

/// Which records an export carries: those of the result (`min`, the default) or of every
/// step (`max`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Min,
    Max,
}

/// How the layer blobs of an export are compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCompression {
    /// `uncompressed`, `gzip` (the default) or `zstd`.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheExport {
    pub target: ExportTarget,
    pub mode: Mode,
    pub compression: LayerCompression,
    pub oci_mediatypes: bool,
    /// An OCI image manifest whose config is the cache config (else an index listing both).
    pub image_manifest: bool,
    /// A failure while exporting is reported on the export's step and the build succeeds.
    pub ignore_error: bool,
}

/// Where a cache import comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportSource {
    Registry {
        reference: String,
    },
    /// The client resolved `digest` from its directory's index.json.
    Local {
        src: String,
        digest: String,
    },
}

/// An entry's type and attributes, ordered (so equal attributes compare equal).
type Entry = (String, BTreeMap<String, String>);

/// The exports `cache` asks for, or the error buildkitd would fail the build with.
pub fn exports(cache: &CacheOptions) -> Result<Vec<CacheExport>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    if !cache.export_ref_deprecated.is_empty() {
        let mut attrs: BTreeMap<String, String> = cache
            .export_attrs_deprecated
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        attrs.insert("ref".into(), cache.export_ref_deprecated.clone());
        entries.push(("registry".into(), attrs));
    }
    for entry in &cache.exports {
        let attrs = entry.attrs.iter().map(|(k, v)| (k.clone(), v.clone()));
        entries.push((entry.r#type.clone(), attrs.collect()));
    }
    let entries = without_duplicates(entries)?;
    entries
        .into_iter()
        .map(|(kind, attrs)| {
            export(&kind, &attrs)
                .map_err(|error| format!("failed to configure {kind} cache exporter: {error}"))
        })
        .collect()
}

/// Every `inline` after the first goes; two entries for one place are an error.
fn without_duplicates(entries: Vec<Entry>) -> Result<Vec<Entry>, String> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut duplicates: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    let mut inline = false;
    for (kind, attrs) in entries {
        if kind == "inline" {
            if !std::mem::replace(&mut inline, true) {
                kept.push((kind, attrs));
            }
            continue;
        }
        let place = match attrs.get("ref") {
            Some(reference) if kind == "registry" => reference.clone(),
            _ => format!("{kind}:{attrs:?}"),
        };
        if seen.insert(place, kind.clone()).is_some() {
            duplicates.push(kind.clone());
        }
        kept.push((kind, attrs));
    }
    if duplicates.is_empty() {
        Ok(kept)
    } else {
        Err(format!(
            "duplicate cache exports [{}]",
            duplicates.join(" ")
        ))
    }
}

fn export(kind: &str, attrs: &BTreeMap<String, String>) -> Result<CacheExport, String> {
    let target = match kind {
        "registry" => ExportTarget::Registry {
            reference: registry_reference(attrs)?,
        },
        "local" => ExportTarget::Local {
            dest: attrs
                .get("dest")
                .filter(|d| !d.is_empty())
                .cloned()
                .ok_or("local cache exporter requires dest")?,
        },
        "inline" => ExportTarget::Inline,
        "gha" | "s3" | "azblob" => {
            return Err(format!(
                "nodekitd keeps no {kind} cache backend (registry, local and inline only)"
            ))
        }
        other => return Err(format!("unknown cache exporter: {other:?}")),
    };
    let oci_mediatypes = flag(attrs, "oci-mediatypes", true)?;
    let image_manifest = flag(attrs, "image-manifest", oci_mediatypes)?;
    if image_manifest && !oci_mediatypes {
        return Err(
            "invalid configuration for remote cache, OCI mediatypes are required for image-manifest cache format"
                .into(),
        );
    }
    Ok(CacheExport {
        target,
        mode: match attrs.get("mode").map(String::as_str) {
            None | Some("" | "min") => Mode::Min,
            Some("max") => Mode::Max,
            // buildkitd falls back to min in silence; an export of other records than asked
            // is refused here.
            Some(other) => {
                return Err(format!(
                    "unsupported cache export mode {other:?} (min, max)"
                ))
            }
        },
        compression: compression(attrs)?,
        oci_mediatypes,
        image_manifest,
        // As buildkitd: a value that is not a bool means false.
        ignore_error: flag(attrs, "ignore-error", false).unwrap_or(false),
    })
}

fn compression(attrs: &BTreeMap<String, String>) -> Result<LayerCompression, String> {
    let kind = attrs
        .get("compression")
        .map_or("gzip", String::as_str)
        .to_string();
    match kind.as_str() {
        "uncompressed" | "gzip" | "zstd" => {}
        "estargz" => {
            return Err(
                "compression estargz is not supported by nodekitd (uncompressed, gzip, zstd)"
                    .into(),
            )
        }
        _ => return Err(format!("unsupported compression type {kind}")),
    }
    for refused in ["compression-level", "force-compression"] {
        if attrs.contains_key(refused) {
            return Err(format!(
                "{refused} is not supported by nodekitd for cache exports yet"
            ));
        }
    }
    Ok(LayerCompression { kind })
}

/// The imports `entries` ask for, each read on its own: buildkitd fails an import, not the
/// build, when it cannot use it.
pub fn imports(entries: &[CacheOptionsEntry]) -> Vec<Result<ImportSource, String>> {
    entries
        .iter()
        .map(|entry| {
            let attrs: BTreeMap<String, String> = entry
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            import(&entry.r#type, &attrs).map_err(|error| {
                format!(
                    "failed to configure {} cache importer: {error}",
                    entry.r#type
                )
            })
        })
        .collect()
}

fn import(kind: &str, attrs: &BTreeMap<String, String>) -> Result<ImportSource, String> {
    match kind {
        "registry" => Ok(ImportSource::Registry {
            reference: registry_reference(attrs)?,
        }),
        "local" => {
            let digest = attrs.get("digest").filter(|d| !d.is_empty());
            let src = attrs.get("src").filter(|s| !s.is_empty());
            match (digest, src) {
                (None, _) => Err("local cache importer requires explicit digest".into()),
                (_, None) => Err("local cache importer requires src".into()),
                (Some(digest), Some(src)) => Ok(ImportSource::Local {
                    src: src.clone(),
                    digest: digest.clone(),
                }),
            }
        }
        "gha" | "s3" | "azblob" => Err(format!(
            "nodekitd keeps no {kind} cache backend (registry and local only)"
        )),
        other => Err(format!("unknown cache importer: {other:?}")),
    }
}

/// `registry.insecure=true` replaces the daemon's settings for the registry in buildkitd; here
/// a registry's transport is the daemon's registry configuration's alone.
const INSECURE_REFUSED: &str = "registry.insecure=true is not supported by nodekitd: configure the registry as plain HTTP or insecure in nodekitd's registry settings ([registry.\"host\"] http/insecure, or containerd's hosts.toml)";

/// `ref`, normalized as buildkitd does (`docker.io/library/`, `:latest` without a tag).
fn registry_reference(attrs: &BTreeMap<String, String>) -> Result<String, String> {
    if flag(attrs, "registry.insecure", false)? {
        return Err(INSECURE_REFUSED.into());
    }
    let reference = attrs
        .get("ref")
        .filter(|r| !r.is_empty())
        .ok_or("missing ref")?;
    Reference::parse_with_default_tag(reference)
        .map(|parsed| parsed.to_string())
        .map_err(|error| format!("ref {reference:?}: {error}"))
}

fn flag(attrs: &BTreeMap<String, String>, name: &str, default: bool) -> Result<bool, String> {
    match attrs.get(name).map(String::as_str) {
        None => Ok(default),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(format!("failed to parse {name}: {other:?} is not a bool")),
    }
}

#[cfg(test)]
mod tests;
