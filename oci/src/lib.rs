//! The image concepts every nodekit crate shares, each written once: image references (Docker's
//! normalisation), platforms (containerd's normalisation), digests and chain IDs, media types.
//! It depends on no other nodekit crate.

mod digest;
pub mod docker_config;
mod media_types;
pub mod platform;
mod reference;

pub use digest::{chain_id, chain_ids, sha256_digest};
pub use media_types::*;
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
