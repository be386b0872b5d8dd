//! The containerd worker against a real containerd, runc and registry (tests/env/up.sh).

mod common;
mod exec;
mod image;
mod resolve;
mod unreachable;
