//! One `--export-cache` run after the build, as its own step in the progress (named and
//! reported as buildkitd's): the records the build used (per `mode`), their layer blobs, the
//! cache config and the manifest written to the store; `cache.manifest` for the client.

use std::time::SystemTime;

use cachestore::CacheKey;

use super::collect::Collected;
use super::image::{CacheImage, ImageFormat};
use super::options::{CacheExport, ExportTarget};
use super::target::CacheStore;
use crate::solver::cache::index::CacheIndex;
use crate::solver::job::Job;
use crate::worker::{Compression, Lease};

/// The response key carrying the exported manifest's descriptor.
pub const CACHE_MANIFEST_KEY: &str = "cache.manifest";

/// An export's step name, as buildkitd names it.
pub fn step_name(target: &ExportTarget) -> &'static str {
    match target {
        ExportTarget::Registry { .. } => "exporting cache to registry",
        ExportTarget::Local { .. } => "exporting cache to client directory",
        ExportTarget::Inline => "exporting inline cache",
    }
}

/// What an export writes with: the index, the job it reports to, a lease for its blobs.
pub struct ExportRun<'a> {
    pub index: &'a CacheIndex,
    pub job: &'a Job,
    pub lease: &'a Lease,
    /// The step the statuses belong to.
    pub vertex: String,
}

impl ExportRun<'_> {
    /// Writes the records under `keys` to `store`; returns the `cache.manifest` value (None:
    /// nothing to export).
    pub async fn run(
        &self,
        export: &CacheExport,
        keys: &[CacheKey],
        store: &CacheStore,
    ) -> Result<Option<String>, String> {
        let started = SystemTime::now();
        let compression = compression(&export.compression.kind)?;
        let collected = self
            .index
            .collect_remote(keys, compression, self.lease)
            .await;
        self.status("preparing build cache for export", started);
        let Collected { records, skipped } = collected;
        for reason in &skipped {
            tracing::warn!(record = %reason, "a record is left out of the cache export");
        }
        if records.is_empty() {
            self.status("skipping cache export for empty result", SystemTime::now());
            return Ok(None);
        }
        let format = ImageFormat {
            image_manifest: export.image_manifest,
            oci_mediatypes: export.oci_mediatypes,
        };
        let image = CacheImage::build(&records, format)?;
        self.write(&image, store).await?;
        Ok(Some(image.response_descriptor()))
    }

    async fn write(&self, image: &CacheImage, store: &CacheStore) -> Result<(), String> {
        let worker = self.index.worker();
        for layer in &image.layers {
            let started = SystemTime::now();
            store
                .put_from(worker, layer)
                .await
                .map_err(|e| format!("error writing layer blob: {e}"))?;
            self.status(&format!("writing layer {}", layer.digest), started);
        }
        let started = SystemTime::now();
        store
            .put_bytes(
                worker,
                self.lease,
                &image.config_descriptor,
                image.config.clone(),
            )
            .await
            .map_err(|e| format!("error writing config blob: {e}"))?;
        let config = &image.config_descriptor.digest;
        self.status(&format!("writing config {config}"), started);
        let started = SystemTime::now();
        store
            .put_manifest(
                worker,
                self.lease,
                &image.descriptor,
                image.manifest.clone(),
            )
            .await
            .map_err(|e| format!("error writing manifest blob: {e}"))?;
        let kind = match image.descriptor.media_type.as_str() {
            crate::oci::OCI_MANIFEST => "cache image manifest",
            _ => "cache manifest",
        };
        let digest = &image.descriptor.digest;
        self.status(&format!("writing {kind} {digest}"), started);
        Ok(())
    }

    fn status(&self, name: &str, started: SystemTime) {
        self.job.progress.status_done(&self.vertex, name, started);
    }
}

fn compression(kind: &str) -> Result<Compression, String> {
    Compression::parse(kind).ok_or_else(|| {
        format!("compression {kind} is not supported by nodekitd for cache exports (uncompressed, gzip, zstd)")
    })
}
