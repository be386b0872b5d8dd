//! A Solve request's `--import-cache` and `--export-cache`: imports registered with the build
//! before it runs, exports written after its result was exported (each its own step, as
//! buildkitd shows them), their `cache.manifest` in the response.

use std::collections::BTreeMap;
use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry};

use crate::exporter::image::PlatformResult;
use crate::gateway::ReturnedResult;
use crate::session::content::SessionContentStore;
use crate::session::SessionCredentials;
use crate::solver::cache::remote::export::{step_name, ExportRun, CACHE_MANIFEST_KEY};
use crate::solver::cache::remote::options::{self, CacheExport, ExportTarget};
use crate::solver::cache::remote::target::CacheStore;
use crate::solver::result::Layer;
use crate::solver::{SolveContext, SolveError, Solver};
use crate::worker::images::{normalize_reference, Pusher};

/// The imports `cache` names, the pre-v0.11 registry references among them.
pub fn register_imports(ctx: &SolveContext, cache: Option<&CacheOptions>) {
    let Some(cache) = cache else {
        return;
    };
    let legacy = cache
        .import_refs_deprecated
        .iter()
        .map(|reference| CacheOptionsEntry {
            r#type: "registry".into(),
            attrs: [("ref".to_string(), reference.clone())].into(),
        });
    let entries: Vec<CacheOptionsEntry> = legacy.chain(cache.imports.iter().cloned()).collect();
    ctx.remote_cache.add_entries(&entries, &ctx.job);
}

/// The exports `cache` asks for (checked when the request came in).
pub fn requested_exports(cache: Option<&CacheOptions>) -> Vec<CacheExport> {
    cache
        .and_then(|cache| options::exports(cache).ok())
        .unwrap_or_default()
}

/// Each result's layers (what `mode=min` exports the records of).
pub fn final_layers(result: &ReturnedResult) -> Vec<Vec<String>> {
    result
        .refs
        .values()
        .flatten()
        .map(|r| {
            r.layers
                .iter()
                .map(Layer::diff_id)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// `type=inline`: each platform's image config gets the records of its layers.
pub fn add_inline_caches(
    solver: &Solver,
    ctx: &SolveContext,
    parts: &mut [PlatformResult],
) -> Result<(), SolveError> {
    let Some(index) = &solver.index else {
        return Err(SolveError::Other(
            "nodekitd runs without a cache index: there is no inline cache to export".into(),
        ));
    };
    for part in parts {
        let layers: Vec<String> = part
            .result
            .layers
            .iter()
            .map(Layer::diff_id)
            .map(str::to_string)
            .collect();
        let bottoms = ctx.remote_cache.bottoms_of(&layers);
        part.inline_cache = index
            .inline_cache(&bottoms)
            .map_err(|e| SolveError::Other(format!("exporting the inline cache: {e}")))?;
    }
    Ok(())
}

/// Writes every export; a failure fails the build unless its `ignore-error` is set.
pub async fn export_caches(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    exports: &[CacheExport],
    finals: &[Vec<String>],
) -> Result<BTreeMap<String, String>, SolveError> {
    let mut response = BTreeMap::new();
    let written_elsewhere = |e: &&CacheExport| e.target != ExportTarget::Inline;
    for (number, export) in exports.iter().filter(written_elsewhere).enumerate() {
        let name = step_name(&export.target);
        let job = &ctx.job;
        let step = job
            .progress
            .begin_step(&format!("{}-cache-{number}", job.id), name);
        let written = export_one(solver, ctx, export, finals, &step.digest).await;
        job.progress.end_step(step, written.as_ref().err().cloned());
        match written {
            Ok(Some(descriptor)) => {
                response.insert(CACHE_MANIFEST_KEY.to_string(), descriptor);
            }
            Ok(None) => {}
            Err(_) if export.ignore_error => {}
            Err(error) => return Err(SolveError::Other(format!("{name}: {error}"))),
        }
    }
    Ok(response)
}

async fn export_one(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    export: &CacheExport,
    finals: &[Vec<String>],
    vertex: &str,
) -> Result<Option<String>, String> {
    let index = solver
        .index
        .as_ref()
        .ok_or("nodekitd runs without a cache index: there is nothing to export")?;
    let store = match &export.target {
        ExportTarget::Local { dest } => {
            let session = solver
                .sessions
                .get(&ctx.session_id)
                .await
                .map_err(|_| "local cache exporter requires session".to_string())?;
            CacheStore::Local(SessionContentStore::new(
                session.channel.clone(),
                &format!("local:{dest}"),
            ))
        }
        ExportTarget::Registry { reference } => {
            let parsed = normalize_reference(reference).map_err(|e| e.to_string())?;
            let credentials = SessionCredentials::new(solver.sessions.clone(), &ctx.session_id);
            let pusher = Pusher::new(&solver.worker, &parsed, &credentials)
                .await
                .map_err(|e| e.to_string())?;
            let tag = parsed
                .digest()
                .or(parsed.tag())
                .unwrap_or("latest")
                .to_string();
            CacheStore::Registry {
                pusher: Box::new(pusher),
                tag,
            }
        }
        ExportTarget::Inline => return Ok(None),
    };
    let lease = ctx.lease().await.map_err(|e| e.to_string())?;
    let run = ExportRun {
        index,
        job: &ctx.job,
        lease: &lease,
        vertex: vertex.to_string(),
    };
    let keys = ctx.remote_cache.keys(export.mode, finals);
    run.run(export, &keys, &store).await
}
