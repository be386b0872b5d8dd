//! Node features against the real containerd: foreign-platform steps (binfmt_misc or the
//! bundled qemu), multi-platform images, and local-mount-source-root. These tests change the
//! machine's binfmt_misc state, so they run one at a time and restore it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod binfmt;
#[path = "../cache/common.rs"]
#[allow(dead_code)] // shared with the cache tests, which use all of it
mod common;
mod mounts;
mod multiarch;
mod store;
