//! Builds driven through the frontend gateway (BuildKit's LLBBridge). Since v0.11 buildctl runs
//! every build this way, raw LLB included: `Control.Solve` arrives without a definition, the
//! client then solves definitions against the build (`LLBBridge.Solve`), may read files of the
//! results, and finally returns the result to export (`LLBBridge.Return`).

mod build;
pub mod caps;
mod containers;
mod exec;
mod files;
mod host;
mod registry;

pub use build::{GatewayBuild, Returned, ReturnedResult, IMAGE_CONFIG_KEY};
pub use containers::{Containers, GatewayContainer};
pub use exec::exec_process;
pub use files::{read_dir, read_file, stat_file, FileStat, ReadRange};
pub use host::FrontendHost;
pub use registry::{Gateways, RegistrationGuard};
