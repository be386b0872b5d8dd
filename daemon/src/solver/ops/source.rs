//! SourceOp: `docker-image://` through the worker's resolution (host image store first) and
//! `local://` through the client's session; `http(s)://` downloaded by the daemon;
//! `oci-layout://` from an OCI layout the client serves; `git://` cloned by the daemon.

use nodekit_proto::pb::SourceOp;

use super::op_platform;
use crate::session::SessionCredentials;
use crate::solver::cache::keys;
use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::{ImageOrigin, ResolveMode};

pub async fn run(op: &OpContext<'_>, source: &SourceOp) -> Result<Ref, SolveError> {
    let identifier = source.identifier.as_str();
    if let Some(reference) = identifier.strip_prefix("docker-image://") {
        return image(op, source, reference).await;
    }
    if let Some(name) = identifier.strip_prefix("local://") {
        return super::local::run(op, source, name).await;
    }
    if let Some(reference) = identifier.strip_prefix("oci-layout://") {
        return super::oci_layout::run(op, source, reference).await;
    }
    if identifier.starts_with("http://") || identifier.starts_with("https://") {
        return super::http::run(op, source).await;
    }
    if identifier.starts_with("git://") {
        return super::git::run(op, source).await;
    }
    let scheme = identifier.split("://").next().unwrap_or(identifier);
    Err(SolveError::Unsupported(format!(
        "source {identifier}: {scheme} sources are not supported by nodekitd yet"
    )))
}

async fn image(op: &OpContext<'_>, source: &SourceOp, reference: &str) -> Result<Ref, SolveError> {
    let platform = op_platform(&op.vertex.op);
    let worker = &op.solver.worker;
    let what = format!("resolving {reference} for {platform}");
    let mode = source
        .attrs
        .get("image.resolvemode")
        .map_or("", String::as_str);
    let mode = ResolveMode::parse(mode).map_err(SolveError::InvalidDefinition)?;
    // The lease is made while the image is looked up: both are containerd round trips.
    let credentials = SessionCredentials::new(op.solver.sessions.clone(), &op.ctx.session_id);
    let (image, lease) = tokio::join!(
        worker.resolve_image_with(reference, &platform, mode, &credentials),
        op.lease()
    );
    let (image, lease) = (image.map_err(|e| SolveError::worker(&what, e))?, lease?);
    if image.origin == ImageOrigin::Registry {
        op.ctx.job.progress.pulled(&op.vertex.digest, &image);
    }
    worker
        .unpack(lease, &image)
        .await
        .map_err(|e| SolveError::worker(format!("unpacking {reference}"), e))?;
    let layer_limit = source
        .attrs
        .get("image.layerlimit")
        .and_then(|l| l.parse::<u64>().ok());
    let key = keys::image_key(&image.image.manifest_digest, &platform, layer_limit);
    Ok(Ref::from_image(image, lease).keyed(key))
}
