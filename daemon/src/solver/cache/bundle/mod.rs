//! The node's cache as a bundle and back (`nodekit cache export` / `import`): the format is
//! `cachestore::bundle`'s, read and written on a blocking thread; this module feeds it from
//! containerd and the index, and feeds them from it.
//!
//! An export sends each selected record after the blobs its result needs: its layers (a step's
//! layer is written into the content store first if no export needed it before), and its base
//! image's manifest, config and layers. An import writes blobs under a lease of its own as they
//! stream, and only when the whole bundle was read and verified unpacks each new record's
//! layers as chain-ID snapshots, gives it a cache lease and inserts all of them in one index
//! transaction. Any failure releases what the import made: nothing becomes visible.

mod export;
mod import;
mod spool;

pub(crate) use crate::chunks::{ChunkReader, ChunkWriter, CHUNK};

pub use export::{ExportSummary, Selection};
pub use import::{ImportFailure, ImportSummary};
