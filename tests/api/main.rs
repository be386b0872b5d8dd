//! The BuildKit API of nodekitd, driven through the nodekit client library against an
//! in-process daemon on the real test containerd: Control, sessions with local sources, the
//! LLB solver with image export, and the LLBBridge gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod annotations;
mod builds;
mod compression;
mod control;
mod entitlements;
mod frontend;
mod frontend_image;
mod gateway;
mod gateway_exec;
mod git_sources;
mod helpers;
mod history;
mod hostile_context;
mod hostile_llb;
mod layers;
mod load;
mod local;
mod local_output;
mod long_dockerfile;
mod metrics;
mod mounts;
mod push;
mod pushed_images;
mod registry_auth;
mod registry_hosts;
mod session_content;
mod session_wire;
mod shutdown;
mod ssh_forward;
mod subrequests;
mod tarball;
mod tcp;
mod tls;
