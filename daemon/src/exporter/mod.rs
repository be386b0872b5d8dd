//! Exporters: where a build's result goes. `image` stores it in the host image store (one
//! manifest, or an index over one manifest per platform).

mod children;
pub mod image;
pub mod platforms;
pub mod push;
pub mod run;
pub mod tarball;
