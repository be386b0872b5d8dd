//! One runner per LLB op kind.

pub mod exec;
pub mod file;
pub mod git;
pub mod http;
pub mod local;
pub mod merge;
pub mod oci_layout;
pub mod source;

mod context;

pub use context::OpContext;

use nodekit_proto::pb;

use crate::oci::Platform;

/// The platform an op runs for: its own, else the node's.
pub fn op_platform(op: &pb::Op) -> Platform {
    match &op.platform {
        Some(p) if !p.os.is_empty() && !p.architecture.is_empty() => Platform::new(
            &p.os,
            &p.architecture,
            Some(p.variant.as_str()).filter(|v| !v.is_empty()),
        ),
        _ => Platform::native(),
    }
}
