//! `--export-cache type=inline`: the records whose results are the exported image's bottom
//! layers, kept in its config (BuildKit's `moby.buildkit.cache.v0`), so whoever pulls the
//! image can import them (`--import-cache type=registry,ref=IMAGE`).

use base64::Engine as _;
use cachestore::{CacheKey, Record};

use crate::solver::cache::index::CacheIndex;

impl CacheIndex {
    /// The inline cache of the records under `bottoms` (each with how many of the image's
    /// layers its result is), base64 as BuildKit keeps it; None when the node has none of them.
    pub fn inline_cache(&self, bottoms: &[(CacheKey, usize)]) -> Result<Option<String>, String> {
        let mut records: Vec<(Record, usize)> = Vec::new();
        for (key, layers) in bottoms {
            if let Some(record) = self.store().get(key).map_err(|e| e.to_string())? {
                records.push((record, *layers));
            }
        }
        if records.iter().all(|(_, layers)| *layers == 0) {
            return Ok(None);
        }
        let borrowed: Vec<(&Record, usize)> = records.iter().map(|(r, n)| (r, *n)).collect();
        let json = cachestore::remote::build_inline(&borrowed)?;
        Ok(Some(base64::engine::general_purpose::STANDARD.encode(json)))
    }
}
