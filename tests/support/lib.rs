//! Test support: a ready, real containerd (and registry) from `tests/env/up.sh`, and ways to
//! look at what nodekit left in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod auth_registry;
mod containerd;
mod counting_proxy;
mod daemon;
mod env;
mod load;
mod loop_fs;
mod namespace;
mod net;
mod pki;
mod private_containerd;
mod process;
mod prometheus;

pub use auth_registry::AuthRegistry;
pub use containerd::{
    ctr, ctr_in, daemon_containers, leases_labelled, leases_labelled_in, run_in_image,
    run_in_namespace, Inventory,
};
pub use counting_proxy::{CountingProxy, SeenRequest};
pub use daemon::{wait_serving, TestDaemon};
pub use env::{number_from_env, TestEnv};
pub use load::{concurrent_builds, sequential_builds, LoadBuilds};
pub use loop_fs::LoopFs;
pub use namespace::ScratchNamespace;
pub use net::free_loopback_addr;
pub use pki::{CertFiles, TestCa};
pub use private_containerd::PrivateContainerd;
pub use process::{
    metric, mountinfo_under, mounts_under, nodekitd_binary, nodekitd_command, DaemonProcess,
    Figures, Listen,
};
pub use prometheus::{http_get, http_get_bytes, Prometheus};
