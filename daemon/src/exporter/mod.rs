//! Exporters: where a build's result goes. `image` stores it in the host image store.

pub mod image;
