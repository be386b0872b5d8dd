//! An `--import-cache` read: its manifest (or index) and cache config, parsed into the records
//! it offers by key. Nothing else is fetched: a record's layers come when a build reaches its
//! step ([`super::lazy`]).

use std::collections::HashMap;

use cachestore::remote::{self, ImportedRecord};
use cachestore::CacheKey;

use super::image::{inline, parse_top, CacheParts};
use super::source::CacheSource;
use crate::worker::Descriptor;

/// The largest manifest read (as buildkitd).
const MANIFEST_LIMIT: u64 = 1 << 20;
/// The largest cache config read (a record takes about a kilobyte).
const CONFIG_LIMIT: u64 = 64 << 20;

/// A cache imported for a build: where it is, and what it offers.
pub struct ImportedCache {
    pub source: CacheSource,
    pub layers: HashMap<String, Descriptor>,
    pub records: HashMap<CacheKey, ImportedRecord>,
}

impl ImportedCache {
    /// Reads the manifest `top` of `store` and the cache config it names, or, for an image,
    /// the inline cache in its config (each platform's, for an index).
    pub async fn read(source: CacheSource, top: &str) -> Result<ImportedCache, String> {
        let bytes = source.manifest(top, MANIFEST_LIMIT).await?;
        let mut cache = ImportedCache {
            source,
            layers: HashMap::new(),
            records: HashMap::new(),
        };
        match parse_top(&bytes)? {
            Some(CacheParts { config, layers }) => {
                if config.size.max(0) as u64 > CONFIG_LIMIT {
                    return Err(format!(
                        "the cache config {} is too large ({} bytes)",
                        config.digest, config.size
                    ));
                }
                let config = cache.source.config(&config.digest, CONFIG_LIMIT).await?;
                let (records, foreign) = remote::parse(&config).map_err(|e| e.to_string())?;
                cache.add(records, foreign, layers);
            }
            None => cache.read_inline(&bytes).await?,
        }
        Ok(cache)
    }

    fn add(
        &mut self,
        records: Vec<ImportedRecord>,
        foreign: usize,
        layers: HashMap<String, Descriptor>,
    ) {
        if foreign > 0 {
            tracing::info!(
                foreign,
                "the imported cache holds records of another builder, which nodekitd never hits"
            );
        }
        self.layers.extend(layers);
        self.records
            .extend(records.into_iter().map(|found| (found.record.key, found)));
    }

    /// An image's inline caches: its manifest's, or each of its index's manifests'.
    async fn read_inline(&mut self, top: &[u8]) -> Result<(), String> {
        let manifests = match inline::manifests_of(top)? {
            Some(manifests) => {
                let mut read = Vec::new();
                for digest in manifests {
                    read.push(self.source.manifest(&digest, MANIFEST_LIMIT).await?);
                }
                read
            }
            None => vec![top.to_vec()],
        };
        for manifest in manifests {
            let Some(image) = inline::ImageManifest::parse(&manifest)? else {
                continue;
            };
            let config = self.source.config(&image.config, CONFIG_LIMIT).await?;
            if let Some((records, layers)) = image.inline_records(&config)? {
                self.add(records, 0, layers);
            }
        }
        if self.records.is_empty() {
            return Err("the image holds no inline cache of nodekitd's".into());
        }
        Ok(())
    }

    /// Whether the cache offers every one of `keys`.
    pub fn offers(&self, keys: &[CacheKey]) -> bool {
        keys.iter().all(|key| self.records.contains_key(key))
    }
}
