//! `oci-layout://NAME@DIGEST` sources: an image from an OCI layout the client serves on its
//! session (`oci.store`, `oci.session`), its blobs copied into containerd's content store under
//! the step's lease and unpacked like any image; keyed by its manifest, as an image is.

use futures::StreamExt as _;
use nodekit_proto::pb::SourceOp;

use super::op_platform;
use crate::session::oci_layout::OciLayout;
use crate::solver::cache::keys;
use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::images::from_content;

pub async fn run(
    op: &OpContext<'_>,
    source: &SourceOp,
    reference: &str,
) -> Result<Ref, SolveError> {
    let (name, digest) = reference.rsplit_once('@').ok_or_else(|| {
        SolveError::InvalidDefinition(format!("oci-layout source {reference}: no @digest"))
    })?;
    if let Some(limit) = source.attrs.get("oci.layerlimit") {
        return Err(SolveError::Unsupported(format!(
            "oci-layout source {reference}: oci.layerlimit={limit} is not supported by nodekitd yet"
        )));
    }
    let store = source.attrs.get("oci.store").ok_or_else(|| {
        SolveError::InvalidDefinition(format!("oci-layout source {reference}: no oci.store"))
    })?;
    let session_id = source
        .attrs
        .get("oci.session")
        .filter(|s| !s.is_empty())
        .unwrap_or(&op.ctx.session_id);
    let platform = op_platform(&op.vertex.op);
    let layout = OciLayout::open(&op.solver.sessions, session_id, store).await?;
    let image = layout.image(digest, &platform).await?;
    let lease = op.lease().await?;
    for blob in &image.blobs {
        copy_blob(op, &layout, blob).await?;
    }
    let worker = &op.solver.worker;
    let resolved = from_content(worker, name, image.target.clone(), &platform)
        .await
        .map_err(|e| SolveError::worker(format!("reading oci-layout {store} image {digest}"), e))?
        .ok_or_else(|| {
            SolveError::Other(format!(
                "oci-layout {store}: image {digest} is incomplete after copying its blobs"
            ))
        })?;
    worker.unpack(lease, &resolved).await.map_err(|e| {
        SolveError::worker(format!("unpacking oci-layout {store} image {digest}"), e)
    })?;
    let key = keys::image_key(&image.manifest.digest, &platform, None);
    Ok(Ref::from_image(resolved, lease).keyed(key))
}

/// Copies blob `digest` from the client's layout into containerd, unless containerd has it
/// (then the step's lease holds it).
async fn copy_blob(op: &OpContext<'_>, layout: &OciLayout, digest: &str) -> Result<(), SolveError> {
    let worker = &op.solver.worker;
    let lease = op.lease().await?;
    // Held first, so containerd's GC cannot take it between the look and the use.
    worker
        .hold_blob(&lease.context(), digest)
        .await
        .map_err(|e| SolveError::worker(format!("holding {digest}"), e))?;
    let present = worker
        .blob_size(digest)
        .await
        .map_err(|e| SolveError::worker(format!("looking for {digest}"), e))?;
    if present.is_some() {
        return Ok(());
    }
    let size = layout.size(digest).await?;
    let (sink, chunks) = tokio::sync::mpsc::channel(8);
    let chunks = tokio_stream::wrappers::ReceiverStream::new(chunks).map(Ok::<_, std::io::Error>);
    let writing = worker.write_blob_from(lease, digest, size, chunks);
    let (read, written) = tokio::join!(layout.read(digest, sink), writing);
    read?;
    written
        .map_err(|e| SolveError::worker(format!("copying {digest} from the client's layout"), e))?;
    Ok(())
}
