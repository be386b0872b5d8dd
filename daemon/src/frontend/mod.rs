//! Frontends built into nodekitd, by name. A frontend turns the client's inputs (its files,
//! through the session, and its options) into LLB, solves it within the build and returns the
//! result with the metadata the exporter needs (`containerimage.config`). Both API paths reach
//! it: `Control.Solve` naming the frontend (buildctl <= v0.10) and `LLBBridge.Solve` naming it
//! (a client-side gateway, buildctl >= v0.11).

pub mod dockerfile;
mod image;

use std::collections::BTreeMap;
use std::sync::Arc;

use nodekit_proto::pb;

use crate::gateway::{GatewayBuild, ReturnedResult};
use crate::solver::SolveError;

/// The built-in Dockerfile frontend's name, as buildctl's `--frontend` gives it.
pub const DOCKERFILE: &str = "dockerfile.v0";

/// What a frontend is asked: its options (`--opt`) and any inputs given as definitions.
pub struct FrontendRequest<'a> {
    pub options: &'a BTreeMap<String, String>,
    pub inputs: &'a BTreeMap<String, pb::Definition>,
}

/// Runs frontend `name` within `build`.
pub async fn run(
    name: &str,
    build: &Arc<GatewayBuild>,
    request: FrontendRequest<'_>,
) -> Result<ReturnedResult, SolveError> {
    match name {
        DOCKERFILE | "dockerfile" => dockerfile::build(build, request, None).await,
        GATEWAY => gateway_image(build, request).await,
        other => Err(SolveError::Unsupported(format!(
            "frontend {other:?} is not built into nodekitd (the built-in frontend is {DOCKERFILE})"
        ))),
    }
}

/// The frontend that runs a frontend image (`--frontend gateway.v0 --opt source=IMAGE`).
pub const GATEWAY: &str = "gateway.v0";

/// `gateway.v0`: the official Dockerfile frontend at a version the built-in one implements is
/// served by the built-in one (as `# syntax=` is); other frontend images run.
async fn gateway_image(
    build: &Arc<GatewayBuild>,
    request: FrontendRequest<'_>,
) -> Result<ReturnedResult, SolveError> {
    let source = request
        .options
        .get("source")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SolveError::InvalidDefinition(format!(
                "frontend {GATEWAY}: the source option (the frontend image) is required"
            ))
        })?;
    if dockerfile::syntax::resolve(source) == dockerfile::syntax::Syntax::External {
        return image::run(build, source, request).await;
    }
    let mut options = request.options.clone();
    options.remove("source");
    let request = FrontendRequest {
        options: &options,
        inputs: request.inputs,
    };
    dockerfile::build(build, request, Some(source)).await
}
