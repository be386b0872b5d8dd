//! The BuildKit API of nodekitd, driven through the nodekit client library against an
//! in-process daemon on the real test containerd: Control, sessions with local sources, the
//! LLB solver with image export, and the LLBBridge gateway.

mod builds;
mod control;
mod frontend;
mod gateway;
mod helpers;
mod layers;
mod local;
mod mounts;
mod tcp;
