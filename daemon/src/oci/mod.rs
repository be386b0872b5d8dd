//! Types that cross stages: digests, chain IDs, platforms and media types.

mod digest;
mod media_types;
mod platform;

pub use digest::{chain_id, chain_ids, sha256_digest};
pub use media_types::*;
pub use platform::{Platform, PlatformError};
