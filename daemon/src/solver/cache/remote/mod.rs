//! BuildKit's remote cache (`--export-cache`, `--import-cache`: registry, local, inline) for the
//! node's records. The requests as buildkitd reads them ([`options`]); per build, the results it
//! used and the caches it imports ([`BuildCache`]); an export ([`export`]: records and blobs
//! ([`collect`]) as BuildKit's cache image ([`image`]) written to a store ([`target`])); an
//! import ([`import`]) whose records become the node's when a build reaches them ([`lazy`]).
//! The cache config itself is `cachestore::remote`. Facts: `docs/buildkit-remote-cache.md`.

pub mod collect;
pub mod export;
pub mod image;
pub mod import;
mod inline;
mod lazy;
pub mod options;
pub mod source;
pub mod target;

use std::sync::Arc;

use cachestore::CacheKey;
use nodekit_proto::moby::buildkit::v1::CacheOptionsEntry;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use self::import::ImportedCache;
use self::options::{ImportSource, Mode};
use self::source::CacheSource;
use super::index::CacheIndex;
use crate::session::content::SessionContentStore;
use crate::session::{SessionCredentials, SessionManager};
use crate::solver::job::Job;
use crate::solver::result::{Layer, Ref};
use crate::worker::images::{normalize_reference, RegistryReader};
use crate::worker::Worker;

/// One build's side of the remote cache.
#[derive(Default)]
pub struct BuildCache {
    /// The results the build reached (hits and recorded), with their layers' diff IDs.
    used: Mutex<Vec<(CacheKey, Vec<String>)>>,
    imports: Mutex<Vec<Arc<PendingImport>>>,
}

/// An import named by the request, read when a step first misses the node's cache.
struct PendingImport {
    /// As buildkitd names it in the step `importing cache manifest from <id>`.
    id: String,
    source: ImportSource,
    /// None when it could not be read (reported on its step; the build goes on without it).
    read: OnceCell<Option<Arc<ImportedCache>>>,
}

/// What reading an import needs of the build.
pub struct ImportContext<'a> {
    pub worker: &'a Worker,
    pub sessions: &'a Arc<SessionManager>,
    pub session_id: &'a str,
    pub job: &'a Job,
}

impl BuildCache {
    /// Notes results the build reached (their records are what an export carries).
    pub fn note(&self, results: &[Ref]) {
        let mut used = self.used.lock();
        for result in results {
            if let Some(key) = result.key {
                used.push((key, diff_ids(result)));
            }
        }
    }

    /// The records an export of `mode` carries: every result the build reached (`max`), or
    /// those whose layers are the bottom of one of `finals`' (`min`: the image's layers).
    pub fn keys(&self, mode: Mode, finals: &[Vec<String>]) -> Vec<CacheKey> {
        let used = self.used.lock();
        let mut keys: Vec<CacheKey> = used
            .iter()
            .filter(|(_, layers)| {
                mode == Mode::Max || finals.iter().any(|last| last.starts_with(layers))
            })
            .map(|(key, _)| *key)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The results the build reached whose layers are the bottom of `layers` (a result's),
    /// each with how many layers it is: what an inline cache of that result carries.
    pub fn bottoms_of(&self, layers: &[String]) -> Vec<(CacheKey, usize)> {
        let used = self.used.lock();
        let mut found: Vec<(CacheKey, usize)> = used
            .iter()
            .filter(|(_, bottom)| layers.starts_with(bottom))
            .map(|(key, bottom)| (*key, bottom.len()))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Adds the imports a request names; one that cannot be read as an import is reported
    /// on a failed step of its own, and the build goes on without it (as buildkitd).
    pub fn add_entries(&self, entries: &[CacheOptionsEntry], job: &Job) {
        for (entry, read) in entries.iter().zip(options::imports(entries)) {
            match read {
                Ok(source) => self.add_import(source),
                Err(error) => {
                    let name = format!("importing cache manifest from {}", entry.r#type);
                    let step = job.progress.begin_step(&job.id, &name);
                    job.progress.end_step(step, Some(error));
                }
            }
        }
    }

    /// Adds an import (once per place).
    pub fn add_import(&self, source: ImportSource) {
        let id = match &source {
            ImportSource::Registry { reference, .. } => reference.clone(),
            ImportSource::Local { src, digest } => format!("local:{src}@{digest}"),
        };
        let mut imports = self.imports.lock();
        if imports.iter().all(|i| i.id != id) {
            imports.push(Arc::new(PendingImport {
                id,
                source,
                read: OnceCell::new(),
            }));
        }
    }

    /// After a miss of the node's cache: makes the records under `keys` the node's from the
    /// first import that offers them all; whether one did.
    pub async fn import(
        &self,
        index: &CacheIndex,
        context: &ImportContext<'_>,
        keys: &[CacheKey],
    ) -> bool {
        let imports: Vec<Arc<PendingImport>> = self.imports.lock().clone();
        for pending in imports {
            let Some(cache) = pending.cached(context).await else {
                continue;
            };
            if !cache.offers(keys) {
                continue;
            }
            match index.import_records(&cache, keys).await {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(import = %pending.id, %error, "an imported record could not be used; the step runs");
                }
            }
        }
        false
    }
}

impl PendingImport {
    async fn cached(&self, context: &ImportContext<'_>) -> Option<Arc<ImportedCache>> {
        self.read
            .get_or_init(|| async {
                let name = format!("importing cache manifest from {}", self.id);
                let step = context.job.progress.begin_step(&context.job.id, &name);
                let read = self.read_cache(context).await;
                let error = read.as_ref().err().cloned();
                context.job.progress.end_step(step, error);
                read.ok().map(Arc::new)
            })
            .await
            .clone()
    }

    async fn read_cache(&self, context: &ImportContext<'_>) -> Result<ImportedCache, String> {
        match &self.source {
            ImportSource::Local { src, digest } => {
                let session = context
                    .sessions
                    .get(context.session_id)
                    .await
                    .map_err(|_| "local cache importer requires session".to_string())?;
                let store =
                    SessionContentStore::new(session.channel.clone(), &format!("local:{src}"));
                ImportedCache::read(CacheSource::Local(store), digest).await
            }
            ImportSource::Registry { reference } => {
                let reference = normalize_reference(reference).map_err(|e| e.to_string())?;
                let credentials =
                    SessionCredentials::new(context.sessions.clone(), context.session_id);
                let reader = RegistryReader::open(context.worker, &reference, &credentials)
                    .await
                    .map_err(|e| e.to_string())?;
                let top = reader.top.1.clone();
                ImportedCache::read(CacheSource::Registry(Box::new(reader)), &top).await
            }
        }
    }
}

fn diff_ids(result: &Ref) -> Vec<String> {
    result
        .layers
        .iter()
        .map(Layer::diff_id)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::from_bytes([n; 32])
    }

    fn layers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// A builder stage (b1, b2) and the final stage (f1, f2 on the base) it copies from.
    fn multi_stage() -> BuildCache {
        let cache = BuildCache::default();
        cache.used.lock().extend([
            (key(1), layers(&["base", "b1"])),
            (key(2), layers(&["base", "b1", "b2"])),
            (key(3), layers(&["base", "f1"])),
            (key(4), layers(&["base", "f1", "f2"])),
            (key(4), layers(&["base", "f1", "f2"])),
        ]);
        cache
    }

    #[test]
    fn min_exports_the_records_of_the_results_layers_and_max_every_one() {
        let cache = multi_stage();
        let last = [layers(&["base", "f1", "f2"])];
        assert_eq!(cache.keys(Mode::Min, &last), [key(3), key(4)]);
        assert_eq!(
            cache.keys(Mode::Max, &last),
            [key(1), key(2), key(3), key(4)]
        );
        assert_eq!(cache.bottoms_of(&last[0]), [(key(3), 2), (key(4), 3)]);
    }

    #[test]
    fn an_import_is_added_once_per_place() {
        let cache = BuildCache::default();
        let registry = || ImportSource::Registry {
            reference: "r.example/c:1".into(),
        };
        cache.add_import(registry());
        cache.add_import(registry());
        cache.add_import(ImportSource::Local {
            src: "/c".into(),
            digest: "sha256:aa".into(),
        });
        let ids: Vec<String> = cache.imports.lock().iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids, ["r.example/c:1", "local:/c@sha256:aa"]);
    }
}
