//! nodekitd: a BuildKit-compatible image builder that uses the node's containerd as its worker.

pub mod config;
pub mod daemon;
pub mod oci;
pub mod server;
pub mod worker;
