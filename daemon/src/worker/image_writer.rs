//! Writing an image into the host image store: config (inheriting the base image's, with
//! history and diff IDs), manifest (OCI or Docker media types), GC labels, and the image
//! record, marked unpacked so a pod starts without another unpack.

use std::collections::HashMap;
use std::str::FromStr;

use containerd_client::types::Descriptor;
use oci_spec::image::{
    Config, ConfigBuilder, Descriptor as OciDescriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfiguration, ImageConfigurationBuilder, ImageManifestBuilder, MediaType, RootFsBuilder,
};

use super::content;
use super::context::CallContext;
use super::error::{WorkerError, WorkerResult};
use super::images::{put_image_record, ImageRecord, ResolvedImage};
use super::layers::CommittedLayer;
use super::Worker;
use serde_json::{json, Value};

use crate::oci::{self, chain_ids, sha256_digest, Platform};

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
    let mut config_labels = HashMap::new();
    if let Some(chain) = &top_chain {
        if worker.snapshots().exists(ctx, chain).await? {
            let (key, value) = content::snapshot_gc_label(worker.snapshotter(), chain);
            config_labels.insert(key, value);
        }
    }
    let config_type = match request.format {
        ManifestFormat::Oci => oci::OCI_CONFIG,
        ManifestFormat::Docker => oci::DOCKER_CONFIG,
    };
    let config_size = config_bytes.len() as i64;
    content::write_blob(
        worker.channel(),
        ctx,
        &config_digest,
        config_bytes,
        config_labels,
    )
    .await?;

    let layers = manifest_layers(request)?;
    let layer_digests: Vec<String> = layers.iter().map(|l| l.digest().to_string()).collect();
    let manifest_type = match request.format {
        ManifestFormat::Oci => oci::OCI_MANIFEST,
        ManifestFormat::Docker => oci::DOCKER_MANIFEST,
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(manifest_type))
        .config(descriptor(config_type, &config_digest, config_size)?)
        .layers(layers)
        .build()
        .map_err(invalid)?;
    let manifest_bytes = to_json(&manifest)?;
    let manifest_digest = sha256_digest(&manifest_bytes);
    let manifest_desc = Descriptor {
        media_type: manifest_type.to_string(),
        digest: manifest_digest.clone(),
        size: manifest_bytes.len() as i64,
        annotations: HashMap::new(),
    };
    let labels = content::manifest_gc_labels(&config_digest, &layer_digests);
    content::write_blob(
        worker.channel(),
        ctx,
        &manifest_digest,
        manifest_bytes,
        labels,
    )
    .await?;
    for name in &request.names {
        let record = ImageRecord {
            name: name.clone(),
            target: manifest_desc.clone(),
        };
        put_image_record(worker.channel(), ctx, &record).await?;
    }
    Ok(WrittenImage {
        manifest: manifest_desc,
        config_digest,
        chain_id: top_chain,
    })
}

fn image_config(request: &ImageWrite<'_>) -> WorkerResult<ImageConfiguration> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
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
                .created(now.clone())
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
        .created(now)
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

/// The base image's layers, then the new ones (media types matched to the manifest format).
fn manifest_layers(request: &ImageWrite<'_>) -> WorkerResult<Vec<OciDescriptor>> {
    let mut layers: Vec<OciDescriptor> = request
        .base
        .map(|b| b.layers().to_vec())
        .unwrap_or_default();
    for new in &request.layers {
        let blob = &new.layer.blob;
        let media_type = match (request.format, blob.media_type.as_str()) {
            (ManifestFormat::Docker, oci::OCI_LAYER_GZIP) => oci::DOCKER_LAYER_GZIP,
            (ManifestFormat::Docker, oci::OCI_LAYER) => oci::DOCKER_LAYER,
            (_, other) => other,
        };
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
    let history = reconcile_history(config.get("history"), diff_ids.len());
    config["history"] = Value::Array(history);
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    if config.get("created").is_none_or(Value::is_null) {
        config["created"] =
            json!(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    }
    (config, diff_ids)
}

/// `history` with exactly `layers` entries not marked `empty_layer`.
fn reconcile_history(history: Option<&Value>, layers: usize) -> Vec<Value> {
    let mut history = history
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_empty = |h: &Value| {
        h.get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut non_empty = history.iter().filter(|h| !is_empty(h)).count();
    for entry in history.iter_mut().rev() {
        if non_empty <= layers {
            break;
        }
        if !is_empty(entry) {
            entry["empty_layer"] = json!(true);
            non_empty -= 1;
        }
    }
    for _ in non_empty..layers {
        history.push(json!({"created_by": "nodekit build step"}));
    }
    history
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn history_gets_one_non_empty_entry_per_layer() {
        let given = json!([{"created_by": "FROM"}, {"created_by": "ENV", "empty_layer": true}, {"created_by": "RUN"}]);
        let fewer = reconcile_history(Some(&given), 1);
        assert_eq!(fewer[2]["empty_layer"], json!(true));
        assert_eq!(fewer[0].get("empty_layer"), None);
        let more = reconcile_history(Some(&given), 3);
        assert_eq!(more.len(), 4);
        assert_eq!(more[3]["created_by"], "nodekit build step");
    }
}
