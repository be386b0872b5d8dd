//! Writing an image into the host image store: config (inheriting the base image's, with
//! history and diff IDs), manifest (OCI or Docker media types), GC labels, and the image
//! record, marked unpacked so a pod starts without another unpack.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use nodekit_oci::{self as oci, chain_ids, sha256_digest, Platform};
use oci_spec::image::{
    Config, ConfigBuilder, Descriptor as OciDescriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfiguration, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
};
use serde::Serialize;
use serde_json::{json, Value};

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::image_history::{fill_history_times, layer_time, now, reconcile_history};
use super::images::{get_image, put_image_record, ImageRecord, ResolvedImage};
use super::layers::CommittedLayer;
use super::Worker;
use crate::Descriptor;

/// Which manifest and config media types to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    #[default]
    Oci,
    Docker,
}

/// A new layer and the history line that explains it.
#[derive(Clone, Debug)]
pub struct NewLayer {
    pub layer: CommittedLayer,
    pub created_by: String,
}

/// Annotations of one platform's manifest (BuildKit's `annotation-manifest.KEY` and
/// `annotation-manifest-descriptor.KEY`). Kept sorted: they are part of the manifest's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestAnnotations {
    /// In the manifest itself.
    pub manifest: BTreeMap<String, String>,
    /// On the manifest's descriptor: the index's entry for it, or, for an image of one
    /// manifest, the image record's target (and a tarball's `index.json`).
    pub descriptor: BTreeMap<String, String>,
}

/// What to write.
#[derive(Clone, Debug)]
pub struct ImageWrite<'a> {
    /// Image-store names to point at the result (already normalized).
    pub names: Vec<String>,
    pub base: Option<&'a ResolvedImage>,
    pub platform: Platform,
    pub layers: Vec<NewLayer>,
    /// The runtime config (Cmd, Env, ...); `None` keeps the base image's.
    pub config: Option<Config>,
    /// A whole image config made by a frontend (its runtime config and history); the writer
    /// only fills in the layers' diff IDs and reconciles the history with them.
    /// Kept as JSON: Docker's extensions (Healthcheck, OnBuild, Shell) are not in the OCI types.
    pub full_config: Option<serde_json::Value>,
    pub format: ManifestFormat,
    pub annotations: ManifestAnnotations,
    /// The base's layers as the manifest lists them, when they are not the base's own blobs
    /// (`force-compression` converted them); None: the base's.
    pub base_layers: Option<Vec<Descriptor>>,
}

#[derive(Clone, Debug)]
pub struct WrittenImage {
    pub manifest: Descriptor,
    pub config_digest: String,
    /// The chain ID of the image's top snapshot (None without layers).
    pub chain_id: Option<String>,
}

pub async fn write_image(
    worker: &Worker,
    ctx: &CallContext,
    request: &ImageWrite<'_>,
) -> WorkerResult<WrittenImage> {
    let (config_bytes, diff_ids) = match &request.full_config {
        Some(full) => {
            let (config, diff_ids) = frontend_config(request, full.clone());
            (to_json(&config)?, diff_ids)
        }
        None => {
            let config = image_config(request)?;
            (to_json(&config)?, config.rootfs().diff_ids().clone())
        }
    };
    let config_digest = sha256_digest(&config_bytes);
    let top_chain = chain_ids(&diff_ids).pop();
    let manifest = manifest_blob(request, &config_digest, config_bytes.len() as i64)?;
    let written = WrittenImage {
        manifest: manifest.descriptor.clone(),
        config_digest: config_digest.clone(),
        chain_id: top_chain.clone(),
    };
    if names_point_at(worker, ctx, &request.names, &written.manifest).await? {
        // An unchanged rebuild: the image is already this one, nothing to write.
        return Ok(written);
    }
    // Both blobs are known now: write them side by side.
    let config_written = write_config(worker, ctx, &config_digest, config_bytes, &top_chain);
    let manifest_written = ensure_blob(
        worker,
        ctx,
        &manifest.descriptor.digest,
        manifest.bytes,
        manifest.labels,
    );
    futures::try_join!(config_written, manifest_written)?;
    for name in &request.names {
        let record = ImageRecord {
            name: name.clone(),
            target: manifest.descriptor.clone(),
        };
        put_image_record(worker.channel(), ctx, &record).await?;
    }
    Ok(written)
}

/// Whether every one of `names` (at least one) already names `manifest`, which the content
/// store still has. Reads only: an image record holds its manifest, config and layers.
async fn names_point_at(
    worker: &Worker,
    ctx: &CallContext,
    names: &[String],
    manifest: &Descriptor,
) -> WorkerResult<bool> {
    if names.is_empty() {
        return Ok(false);
    }
    let records = names
        .iter()
        .map(|name| get_image(worker.channel(), ctx, name));
    let (records, stored) = futures::try_join!(
        futures::future::try_join_all(records),
        content::info(worker.channel(), ctx, &manifest.digest)
    )?;
    let current = records
        .iter()
        .all(|record| record.as_ref().is_some_and(|r| r.target == *manifest));
    Ok(current && stored.is_some())
}

/// Writes the config, labelled with its snapshot chain when that is unpacked (as containerd's
/// unpacker labels it), so the image counts as unpacked.
async fn write_config(
    worker: &Worker,
    ctx: &CallContext,
    digest: &str,
    bytes: Vec<u8>,
    top_chain: &Option<String>,
) -> WorkerResult<()> {
    let mut labels = HashMap::new();
    if let Some(chain) = top_chain {
        if worker.snapshots().exists(ctx, chain).await? {
            let (key, value) = content::snapshot_gc_label(worker.snapshotter(), chain);
            labels.insert(key, value);
        }
    }
    ensure_blob(worker, ctx, digest, bytes, labels).await
}

/// Writes a blob unless the content store has it with these labels already (an unchanged
/// rebuild's config and manifest: writing again would cost a commit). An existing blob joins
/// the call's lease, so it stays until the image names it.
async fn ensure_blob(
    worker: &Worker,
    ctx: &CallContext,
    digest: &str,
    bytes: Vec<u8>,
    labels: HashMap<String, String>,
) -> WorkerResult<()> {
    // Held by the call's lease before it is looked for: a blob found present may be garbage
    // already (an earlier build's whose lease went), collected before anything names it.
    worker.hold_blob(ctx, digest).await?;
    let existing = content::info(worker.channel(), ctx, digest).await?;
    let labelled = |info: &containerd_client::services::v1::Info| {
        labels.iter().all(|(k, v)| info.labels.get(k) == Some(v))
    };
    match existing {
        Some(info) if labelled(&info) => Ok(()),
        _ => content::write_blob(worker.channel(), ctx, digest, bytes, labels).await,
    }
}

/// A manifest ready to write.
struct ManifestBlob {
    bytes: Vec<u8>,
    descriptor: Descriptor,
    labels: HashMap<String, String>,
}

fn manifest_blob(
    request: &ImageWrite<'_>,
    config_digest: &str,
    config_size: i64,
) -> WorkerResult<ManifestBlob> {
    let config_type = match request.format {
        ManifestFormat::Oci => oci::OCI_CONFIG,
        ManifestFormat::Docker => oci::DOCKER_CONFIG,
    };
    let layers = manifest_layers(request)?;
    let layer_digests: Vec<String> = layers.iter().map(|l| l.digest().to_string()).collect();
    let manifest_type = match request.format {
        ManifestFormat::Oci => oci::OCI_MANIFEST,
        ManifestFormat::Docker => oci::DOCKER_MANIFEST,
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(manifest_type))
        .config(descriptor(config_type, config_digest, config_size)?)
        .layers(layers)
        .build()
        .map_err(invalid)?;
    let bytes = to_json(&Annotated {
        manifest: &manifest,
        annotations: &request.annotations.manifest,
    })?;
    let descriptor = Descriptor {
        media_type: manifest_type.to_string(),
        digest: sha256_digest(&bytes),
        size: bytes.len() as i64,
        annotations: request.annotations.descriptor.clone().into_iter().collect(),
    };
    Ok(ManifestBlob {
        bytes,
        descriptor,
        labels: content::manifest_gc_labels(config_digest, &layer_digests),
    })
}

/// A manifest with its annotations last and sorted, as BuildKit (Go's encoder) writes them:
/// oci-spec keeps annotations in a HashMap, whose order would change the digest from run to
/// run.
#[derive(Serialize)]
struct Annotated<'a, T: Serialize> {
    #[serde(flatten)]
    manifest: &'a T,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

fn image_config(request: &ImageWrite<'_>) -> WorkerResult<ImageConfiguration> {
    let (mut diff_ids, mut history, base_config) = match request.base {
        Some(base) => (
            base.diff_ids(),
            base.image.config.history().clone().unwrap_or_default(),
            base.image.config.config().clone(),
        ),
        None => (Vec::new(), Vec::new(), None),
    };
    for new in &request.layers {
        diff_ids.push(new.layer.diff_id.clone());
        history.push(
            HistoryBuilder::default()
                .created(layer_time(new.layer.created_ms))
                .created_by(new.created_by.clone())
                .comment("nodekit")
                .build()
                .map_err(invalid)?,
        );
    }
    let runtime_config = match (&request.config, base_config) {
        (Some(config), _) => config.clone(),
        (None, Some(base)) => base,
        (None, None) => ConfigBuilder::default().build().map_err(invalid)?,
    };
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .map_err(invalid)?;
    let mut builder = ImageConfigurationBuilder::default()
        .created(
            request
                .layers
                .last()
                .map_or_else(now, |l| layer_time(l.layer.created_ms)),
        )
        .architecture(request.platform.architecture.as_str())
        .os(request.platform.os.as_str())
        .config(runtime_config)
        .rootfs(rootfs)
        .history(history);
    if let Some(variant) = &request.platform.variant {
        builder = builder.variant(variant.clone());
    }
    builder.build().map_err(invalid)
}

/// The base image's layers, then the new ones, every media type in the manifest format's
/// spelling (as BuildKit converts them: a Docker base's layers in an OCI manifest are OCI
/// layers, and the other way round).
fn manifest_layers(request: &ImageWrite<'_>) -> WorkerResult<Vec<OciDescriptor>> {
    let oci = request.format == ManifestFormat::Oci;
    let base_len = request.base.map_or(0, |b| b.layers().len());
    let mut layers: Vec<OciDescriptor> = match (&request.base_layers, request.base) {
        (Some(converted), _) if converted.len() != base_len => {
            return Err(invalid(format!(
                "{} converted base layers for a base of {base_len}",
                converted.len()
            )))
        }
        (Some(converted), _) => converted
            .iter()
            .map(|l| descriptor(&l.media_type, &l.digest, l.size))
            .collect::<WorkerResult<_>>()?,
        (None, Some(base)) => base.layers().to_vec(),
        (None, None) => Vec::new(),
    };
    for layer in &mut layers {
        let media_type = oci::layer_media_type(layer.media_type().as_ref(), oci).to_string();
        layer.set_media_type(MediaType::from(media_type.as_str()));
    }
    for new in &request.layers {
        let blob = &new.layer.blob;
        let media_type = oci::layer_media_type(&blob.media_type, oci);
        layers.push(descriptor(media_type, &blob.digest, blob.size)?);
    }
    Ok(layers)
}

fn descriptor(media_type: &str, digest: &str, size: i64) -> WorkerResult<OciDescriptor> {
    let digest = Digest::from_str(digest).map_err(invalid)?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(digest)
        .size(size.max(0) as u64)
        .build()
        .map_err(invalid)
}

fn to_json(value: &impl serde::Serialize) -> WorkerResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(invalid)
}

fn invalid(error: impl std::fmt::Display) -> WorkerError {
    WorkerError::Exec(format!("building image metadata: {error}"))
}

/// The frontend's config with the image's diff IDs, its history reconciled with the layers as
/// upstream's exporter does: one non-empty history entry per layer.
fn frontend_config(request: &ImageWrite<'_>, mut config: Value) -> (Value, Vec<String>) {
    let mut diff_ids = request.base.map(|b| b.diff_ids()).unwrap_or_default();
    diff_ids.extend(request.layers.iter().map(|l| l.layer.diff_id.clone()));
    let mut history = reconcile_history(config.get("history"), diff_ids.len());
    let base_len = diff_ids.len() - request.layers.len();
    let times: Vec<Option<u64>> = std::iter::repeat_n(None, base_len)
        .chain(request.layers.iter().map(|l| Some(l.layer.created_ms)))
        .collect();
    fill_history_times(&mut history, &times);
    let last_created = history.iter().rev().find_map(|h| h.get("created")).cloned();
    config["history"] = Value::Array(history);
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    // As BuildKit: the image is as new as its newest history entry, so an unchanged rebuild
    // writes the same config.
    if config.get("created").is_none_or(Value::is_null) {
        config["created"] = last_created.unwrap_or_else(|| json!(now()));
    }
    (config, diff_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_annotations_come_last_and_sorted_and_none_changes_nothing() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(oci::OCI_MANIFEST))
            .config(descriptor(oci::OCI_CONFIG, &digest, 2).unwrap())
            .layers(Vec::new())
            .build()
            .unwrap();
        let none = BTreeMap::new();
        let plain = to_json(&Annotated {
            manifest: &manifest,
            annotations: &none,
        })
        .unwrap();
        assert_eq!(plain, to_json(&manifest).unwrap());
        let some = BTreeMap::from([
            (
                "org.opencontainers.image.title".to_string(),
                "t".to_string(),
            ),
            ("a.b".to_string(), "c".to_string()),
        ]);
        let annotated = to_json(&Annotated {
            manifest: &manifest,
            annotations: &some,
        })
        .unwrap();
        let text = String::from_utf8(annotated).unwrap();
        assert!(
            text.ends_with(
                r#""layers":[],"annotations":{"a.b":"c","org.opencontainers.image.title":"t"}}"#
            ),
            "{text}"
        );
    }
}
