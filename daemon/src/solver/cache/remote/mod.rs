//! BuildKit's remote cache (`--export-cache`, `--import-cache`: registry, local, inline) for the
//! node's records. So far the requests as buildkitd reads them ([`options`]); the cache config
//! itself is `cachestore::remote`. Facts: `docs/buildkit-remote-cache.md`.

pub mod options;
