//! An `--import-cache` read: its manifest (or index) and cache config, parsed into the records
//! it offers by key. Nothing else is fetched: a record's layers come when a build reaches its
//! step ([`super::lazy`]).

use std::collections::HashMap;

use cachestore::remote::{self, ImportedRecord};
use cachestore::CacheKey;

use super::image::{parse_top, CacheParts};
use super::target::CacheStore;
use crate::worker::Descriptor;

/// The largest manifest read (as buildkitd).
const MANIFEST_LIMIT: u64 = 1 << 20;
/// The largest cache config read (a record takes about a kilobyte).
const CONFIG_LIMIT: u64 = 64 << 20;

/// A cache imported for a build: where it is, and what it offers.
pub struct ImportedCache {
    pub store: CacheStore,
    pub layers: HashMap<String, Descriptor>,
    pub records: HashMap<CacheKey, ImportedRecord>,
}

impl ImportedCache {
    /// Reads the manifest `top` of `store` and the cache config it names.
    pub async fn read(store: CacheStore, top: &str) -> Result<ImportedCache, String> {
        let bytes = store.read_small(top, MANIFEST_LIMIT).await?;
        let Some(CacheParts { config, layers }) = parse_top(&bytes)? else {
            // An image without a cache config: what an inline cache would be read from.
            return Err(format!(
                "{top} is not a cache manifest (it names no cache config)"
            ));
        };
        let config = store.read_small(&config.digest, CONFIG_LIMIT).await?;
        let (records, foreign) = remote::parse(&config).map_err(|e| e.to_string())?;
        if foreign > 0 {
            tracing::info!(
                foreign,
                "the imported cache holds records of another builder, which nodekitd never hits"
            );
        }
        Ok(ImportedCache {
            store,
            layers,
            records: records
                .into_iter()
                .map(|found| (found.record.key, found))
                .collect(),
        })
    }

    /// Whether the cache offers every one of `keys`.
    pub fn offers(&self, keys: &[CacheKey]) -> bool {
        keys.iter().all(|key| self.records.contains_key(key))
    }
}
