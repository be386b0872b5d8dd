//! The containerd worker against a real containerd, runc and registry (tests/env/up.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod common;
mod exec;
mod image;
mod push;
mod resolve;
mod stats;
mod unreachable;
