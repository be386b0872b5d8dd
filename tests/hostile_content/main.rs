//! Hostile content (issue 18): `ADD` URLs answering an endless body or a decompression bomb, and
//! base images whose layers hold links pointing out of the rootfs. Each build ends with a
//! clear error or a correct result inside the rootfs, and the daemon serves the next build.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod bombs;
mod build;
mod links;
mod oci_archive;
mod server;
