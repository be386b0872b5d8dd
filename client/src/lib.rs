//! The nodekit client library: what the `nodekit` CLI and the project's tests use to drive
//! nodekitd (or any BuildKit daemon) over BuildKit's API.

pub mod build;
pub mod cache;
pub mod connect;
pub mod control;
pub mod ociindex;
pub mod session;
