//! SourceOp: `docker-image://` through the worker's resolution (host image store first) and
//! `local://` through the client's session.

use std::sync::Arc;

use nodekit_llb::Vertex;
use nodekit_proto::pb::SourceOp;

use super::op_platform;
use crate::solver::engine::{SolveContext, Solver};
use crate::solver::error::SolveError;
use crate::solver::result::Ref;

pub async fn run(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    vertex: &Vertex,
    source: &SourceOp,
) -> Result<Ref, SolveError> {
    let identifier = source.identifier.as_str();
    if let Some(reference) = identifier.strip_prefix("docker-image://") {
        return image(solver, ctx, vertex, reference).await;
    }
    if let Some(name) = identifier.strip_prefix("local://") {
        return super::local::run(solver, ctx, vertex, source, name).await;
    }
    let scheme = identifier.split("://").next().unwrap_or(identifier);
    Err(SolveError::Unsupported(format!(
        "source {identifier}: {scheme} sources are not supported by nodekitd yet"
    )))
}

async fn image(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    vertex: &Vertex,
    reference: &str,
) -> Result<Ref, SolveError> {
    let platform = op_platform(&vertex.op);
    let worker = &solver.worker;
    let what = format!("resolving {reference} for {platform}");
    let image = worker
        .resolve_image(reference, &platform)
        .await
        .map_err(|e| SolveError::worker(&what, e))?;
    worker
        .unpack(&ctx.lease, &image)
        .await
        .map_err(|e| SolveError::worker(format!("unpacking {reference}"), e))?;
    Ok(Ref::from_image(image))
}
