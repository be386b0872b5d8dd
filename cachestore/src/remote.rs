//! BuildKit's remote cache config (`application/vnd.buildkit.cacheconfig.v0`) for nodekit's
//! records: the JSON an OCI manifest (or index) lists beside the layer blobs, so registries,
//! their garbage collection and tools treat the artifact as a build cache. Its shape is
//! BuildKit's (facts in `docs/buildkit-remote-cache.md` §2); its keys are nodekit's
//! (`blake3:<hex>`, which BuildKit never hits), and every record carries nodekit's stored form
//! in a field BuildKit's importers ignore (`nodekit`), from which an importer rebuilds it.
//!
//! Pure: [`build`] turns records and their layer chains into a config; [`parse`] validates a
//! config (indexes in range, no loops, every layer chain complete) and returns the records it
//! carries with their chains.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::key::CacheKey;
use crate::record::Record;

/// The cache config's media type.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";
/// How a nodekit key is written as a record digest.
const KEY_PREFIX: &str = "blake3:";

/// The cache config as BuildKit writes it (`cache/remotecache/v1/types`), plus nodekit's field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheRecord>,
}

/// One blob in a chain: `parent` is the index of the chain below it, -1 for none (BuildKit
/// omits 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    pub blob: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parent: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub digest: String,
    /// Per input, the records it may link to (indexes into `records`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Vec<CacheInput>>,
    /// The results: each the index of its chain's top layer.
    #[serde(rename = "layers", default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
    /// Results as explicit lists of layer indexes (BuildKit's inline cache writes these).
    #[serde(rename = "chains", default, skip_serializing_if = "Vec::is_empty")]
    pub chained: Vec<ChainedResult>,
    /// nodekit's stored form of the record (base64), absent in BuildKit's own records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodekit: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInput {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    pub link: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheResult {
    pub layer: i64,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedResult {
    pub layers: Vec<i64>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A record to export with its result's layer blobs, bottom first (empty: an empty result).
pub struct ExportRecord<'a> {
    pub record: &'a Record,
    pub chain: Vec<String>,
}

/// A record found in a config, with its result's layer blobs, bottom first.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedRecord {
    pub record: Record,
    pub chain: Vec<String>,
}

/// Why a cache config cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the cache config is not JSON of BuildKit's shape: {0}")]
    Json(String),
    #[error("the cache config's layer {0} names parent {1}, which does not exist")]
    Parent(usize, i64),
    #[error("the cache config's layers loop at layer {0}")]
    Loop(usize),
    #[error("the cache config's record {0} {1}")]
    Record(usize, String),
}

/// The config for `records`, deterministic for the same input: layers sorted by their chains,
/// records by digest (as BuildKit sorts, so equal caches are equal bytes).
pub fn build(records: &[ExportRecord<'_>]) -> Result<CacheConfig, String> {
    let chains = ChainTable::of(records.iter().map(|r| r.chain.as_slice()));
    let mut order: Vec<&ExportRecord<'_>> = records.iter().collect();
    order.sort_by_key(|r| r.record.key);
    let index: HashMap<CacheKey, i64> = order
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record.key, i as i64))
        .collect();
    let records = order
        .iter()
        .map(|r| config_record(r, &chains, &index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CacheConfig {
        layers: chains.layers,
        records,
    })
}

fn config_record(
    export: &ExportRecord<'_>,
    chains: &ChainTable,
    index: &HashMap<CacheKey, i64>,
) -> Result<CacheRecord, String> {
    let mut entry = config_record_of(export.record, index)?;
    entry.results = chains
        .top_of(&export.chain)
        .map(|layer| CacheResult {
            layer,
            created_at: rfc3339(export.record.created_ms),
        })
        .into_iter()
        .collect();
    Ok(entry)
}

/// A record's entry without its results: its key, the inputs exported beside it, nodekit's
/// stored form.
fn config_record_of(
    record: &Record,
    index: &HashMap<CacheKey, i64>,
) -> Result<CacheRecord, String> {
    let stored = portable(record).encode().map_err(|e| e.to_string())?;
    // Only parents exported beside it: BuildKit refuses an input without links.
    let inputs = record
        .parents
        .iter()
        .filter_map(|parent| index.get(parent))
        .map(|link| {
            vec![CacheInput {
                selector: String::new(),
                link: *link,
            }]
        })
        .collect();
    Ok(CacheRecord {
        digest: format!("{KEY_PREFIX}{}", record.key.to_hex()),
        inputs,
        results: Vec::new(),
        chained: Vec::new(),
        nodekit: Some(base64::engine::general_purpose::STANDARD.encode(stored)),
    })
}

/// Every distinct chain prefix as a layer, sorted by its blobs from the bottom.
struct ChainTable {
    layers: Vec<CacheLayer>,
    /// Index of each chain (its blobs, bottom first) in `layers`.
    index: BTreeMap<Vec<String>, i64>,
}

impl ChainTable {
    fn of<'a>(chains: impl Iterator<Item = &'a [String]>) -> ChainTable {
        let mut prefixes: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        for chain in chains {
            for end in 1..=chain.len() {
                prefixes.insert(chain[..end].to_vec(), 0);
            }
        }
        for (position, slot) in prefixes.values_mut().enumerate() {
            *slot = position as i64;
        }
        let layers = prefixes
            .keys()
            .map(|chain| CacheLayer {
                blob: chain.last().cloned().unwrap_or_default(),
                parent: match chain.len() {
                    1 => -1,
                    n => prefixes.get(&chain[..n - 1]).copied().unwrap_or(-1),
                },
            })
            .collect();
        ChainTable {
            layers,
            index: prefixes,
        }
    }

    fn top_of(&self, chain: &[String]) -> Option<i64> {
        self.index.get(chain).copied()
    }
}

/// Reads a config: nodekit's records with their chains, and how many records it holds that
/// are not nodekit's (BuildKit's own, never hit here).
pub fn parse(json: &[u8]) -> Result<(Vec<ImportedRecord>, usize), ConfigError> {
    let config: CacheConfig =
        serde_json::from_slice(json).map_err(|e| ConfigError::Json(e.to_string()))?;
    parse_config(&config)
}

/// The image-config key an inline cache is kept under (BuildKit's).
pub const INLINE_KEY: &str = "moby.buildkit.cache.v0";

/// An inline cache: the records whose results are the image's bottom layers, each given with
/// how many of the image's layers it is; a result's layer is the index of its top one in the
/// image's manifest (as BuildKit writes it). Records of no layers are left out.
pub fn build_inline(records: &[(&Record, usize)]) -> Result<Vec<u8>, String> {
    let mut order: Vec<&(&Record, usize)> = records.iter().filter(|(_, n)| *n > 0).collect();
    order.sort_by_key(|(record, _)| record.key);
    let index: HashMap<CacheKey, i64> = order
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (r.key, i as i64))
        .collect();
    let inline: Vec<CacheRecord> = order
        .iter()
        .map(|(record, layers)| {
            let mut entry = config_record_of(record, &index)?;
            entry.results = vec![CacheResult {
                layer: *layers as i64 - 1,
                created_at: rfc3339(record.created_ms),
            }];
            Ok(entry)
        })
        .collect::<Result<_, String>>()?;
    serde_json::to_vec(&inline).map_err(|e| e.to_string())
}

/// Reads an inline cache (the records JSON) of an image whose manifest lists `image_layers`.
pub fn parse_inline(
    json: &[u8],
    image_layers: &[String],
) -> Result<(Vec<ImportedRecord>, usize), ConfigError> {
    let records: Vec<CacheRecord> =
        serde_json::from_slice(json).map_err(|e| ConfigError::Json(e.to_string()))?;
    let layers = image_layers
        .iter()
        .enumerate()
        .map(|(i, blob)| CacheLayer {
            blob: blob.clone(),
            parent: i as i64 - 1,
        })
        .collect();
    parse_config(&CacheConfig { layers, records })
}

fn parse_config(config: &CacheConfig) -> Result<(Vec<ImportedRecord>, usize), ConfigError> {
    let chains = resolve_chains(&config.layers)?;
    let mut records = Vec::new();
    let mut foreign = 0;
    for (position, record) in config.records.iter().enumerate() {
        check_inputs(position, record, config.records.len())?;
        match imported(position, record, &chains)? {
            Some(found) => records.push(found),
            None => foreign += 1,
        }
    }
    Ok((records, foreign))
}

/// Each layer's chain of blobs, bottom first; a parent out of range or a loop is an error.
fn resolve_chains(layers: &[CacheLayer]) -> Result<Vec<Vec<String>>, ConfigError> {
    let mut chains = Vec::with_capacity(layers.len());
    for start in 0..layers.len() {
        let mut chain = Vec::new();
        let mut at = start as i64;
        while at >= 0 {
            let layer = layers
                .get(at as usize)
                .ok_or(ConfigError::Parent(start, at))?;
            if chain.len() > layers.len() {
                return Err(ConfigError::Loop(start));
            }
            chain.push(layer.blob.clone());
            at = layer.parent;
        }
        chain.reverse();
        chains.push(chain);
    }
    Ok(chains)
}

fn check_inputs(position: usize, record: &CacheRecord, records: usize) -> Result<(), ConfigError> {
    for links in &record.inputs {
        if links.is_empty() {
            return Err(ConfigError::Record(
                position,
                "has an input without links".into(),
            ));
        }
        if let Some(bad) = links
            .iter()
            .find(|l| l.link < 0 || l.link as usize >= records)
        {
            return Err(ConfigError::Record(
                position,
                format!("links to record {}, which does not exist", bad.link),
            ));
        }
    }
    Ok(())
}

/// The nodekit record `record` carries, if it is one of nodekit's.
fn imported(
    position: usize,
    record: &CacheRecord,
    chains: &[Vec<String>],
) -> Result<Option<ImportedRecord>, ConfigError> {
    let (Some(stored), Some(hex)) = (&record.nodekit, record.digest.strip_prefix(KEY_PREFIX))
    else {
        return Ok(None);
    };
    let bad = |what: String| ConfigError::Record(position, what);
    let key: CacheKey = hex.parse().map_err(|_| bad(format!("has key {hex:?}")))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .map_err(|e| bad(format!("has a nodekit part that is not base64: {e}")))?;
    let record_of = Record::decode(key, &bytes).map_err(|e| bad(e.to_string()))?;
    let chain = match record.results.first() {
        None => Vec::new(),
        Some(result) => chains
            .get(usize::try_from(result.layer).map_err(|_| bad("names layer -1".into()))?)
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "names layer {}, which does not exist",
                    result.layer
                ))
            })?,
    };
    Ok(Some(ImportedRecord {
        record: record_of,
        chain,
    }))
}

/// The record as it travels: what only this node knows (its snapshot, lease and use) left
/// out, so the same record is the same bytes from every node (an inline cache is part of the
/// image, whose digest must not depend on the node that exported it).
fn portable(record: &Record) -> Record {
    Record {
        snapshot: String::new(),
        lease: String::new(),
        last_used_ms: 0,
        hit_count: 0,
        ..record.clone()
    }
}

/// Milliseconds since the epoch as RFC 3339 in UTC (BuildKit writes Go's RFC3339Nano).
fn rfc3339(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests;
