//! LLB, BuildKit's low-level build graph.
//!
//! A build is a DAG of operations ("ops"): *source* ops bring in content (an image, the client's
//! local directory, a git repository, an HTTP file), *exec* ops run a command over mounted
//! snapshots, *file* ops copy/create/remove files, *merge* and *diff* ops combine snapshots. A
//! client sends the graph as a [`pb::Definition`](nodekit_proto::pb::Definition): a list of
//! protobuf-encoded `pb::Op`s, each identified by the sha256 digest of its exact bytes, whose
//! inputs name other ops by digest and output index. The last entry is a terminal op whose single
//! input is the build's result. Per-op metadata (custom names, cache hints, caps) travels beside
//! the ops, keyed by digest, and never enters the digest itself.
//!
//! This crate decodes and validates a definition as it arrives from a client ([`load`]) into a
//! [`Graph`] the solver can walk. Building definitions in Rust is `nodekit-llb-builder`'s part.

pub mod definition;
mod digest;
pub mod pathutil;

pub use definition::{load, load_or_empty, Graph, LlbError, OutputRef, Vertex};
pub use digest::digest_of;
