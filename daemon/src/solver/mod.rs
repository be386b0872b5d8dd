//! The solver: walks an LLB graph, runs each vertex once (independent branches in parallel),
//! reports progress, and cancels everything when the build is cancelled. Results are committed
//! containerd snapshots (see `result`). Before a vertex runs, the cache seam is asked for it.

mod build_lease;
pub mod cache;
mod engine;
pub mod entitlements;
pub mod error;
pub mod job;
mod local_sources;
mod ops;
pub mod progress;
pub mod recent;
pub mod result;
mod sharing;

pub use engine::{SolveContext, Solver};
pub use error::SolveError;
pub use job::{Job, JobGuard, Jobs};
pub use ops::exec::{container_secret_env, prepare_container_mounts, ContainerMounts};
pub use result::{Layer, Ref};
