//! nodekitd: a BuildKit-compatible image builder that uses the node's containerd as its worker.

pub mod api;
pub mod chunks;
pub mod config;
pub mod daemon;
pub mod exporter;
pub mod frontend;
pub mod gateway;
pub mod history;
pub mod memory;
pub mod metrics;
pub use nodekit_oci as oci;
pub mod server;
pub mod session;
pub mod solver;
pub mod waitmap;
pub use nodekit_worker as worker;
