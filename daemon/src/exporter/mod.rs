//! Exporters: where a build's result goes. `image` stores it in the host image store (one
//! manifest, or an index over one manifest per platform), `registry` pushes it, `oci` and
//! `docker` send it to the client as a tarball; `tar` and `local` send the client its files.

pub mod annotations;
mod children;
pub mod fs_tarball;
pub mod image;
mod image_attrs;
mod image_layers;
pub mod local;
pub mod platforms;
pub mod push;
pub mod run;
pub mod tarball;
mod views;

use std::collections::BTreeMap;

use crate::solver::{SolveContext, SolveError, Solver};

/// One `--output` of a build.
pub enum Exporter {
    /// An image: into the node's store, a registry, or a tarball for the client.
    Image(image::ImageExport),
    /// `tar`: the result's filesystem as one tar for the client.
    FilesystemTar,
    /// `local`: the result's files into a directory of the client's.
    Local(local::LocalExport),
}

impl Exporter {
    /// The exporter `kind` with `attrs`; None for a kind nodekitd does not have.
    pub fn of(
        kind: &str,
        attrs: &BTreeMap<String, String>,
    ) -> Option<Result<Exporter, SolveError>> {
        match kind {
            "tar" => return Some(filesystem_attrs(attrs).map(|()| Exporter::FilesystemTar)),
            "local" => return Some(local::LocalExport::from_attrs(attrs).map(Exporter::Local)),
            _ => {}
        }
        let exporter = image::ImageExporter::of(kind)?;
        Some(image::ImageExport::from_attrs(attrs, exporter).map(Exporter::Image))
    }

    /// Runs this exporter, the build's `index`th, on the result's `parts` (one per platform);
    /// returns its response fields.
    pub async fn export(
        &self,
        solver: &Solver,
        ctx: &SolveContext,
        parts: &[image::PlatformResult],
        index: usize,
    ) -> Result<BTreeMap<String, String>, SolveError> {
        match self {
            Exporter::Image(image) => run::export_image(solver, ctx, image, parts, index).await,
            Exporter::FilesystemTar => run::export_filesystem(solver, ctx, parts, index).await,
            Exporter::Local(local) => local::export_local(solver, ctx, local, parts, index).await,
        }
    }

    /// Whether it writes an image (whose config can keep an inline cache).
    pub fn writes_image(&self) -> bool {
        matches!(self, Exporter::Image(_))
    }
}

/// The `tar` exporter's attributes: `platform-split` as nodekitd writes (true), nothing else.
fn filesystem_attrs(attrs: &BTreeMap<String, String>) -> Result<(), SolveError> {
    for (key, value) in attrs {
        let honoured = key == "platform-split" && matches!(value.as_str(), "" | "true" | "1");
        if !honoured {
            return Err(SolveError::Unsupported(format!(
                "tar exporter: {key}={value} is not supported by nodekitd yet"
            )));
        }
    }
    Ok(())
}
