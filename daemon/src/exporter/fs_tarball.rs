//! The `tar` exporter: the result's filesystem as one tar, sent to the client through its
//! session's `FileSend`; with several platforms each under a directory named after it
//! (`linux_amd64/`, as buildkitd's `platform-split`). Written from a read-only view of the
//! result's snapshot on a blocking thread, symlinks kept as links.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::image::PlatformResult;
use super::tarball::send_to_client;
use super::views::mount_results;
use crate::chunks::ChunkWriter;
use crate::solver::{SolveContext, SolveError, Solver};

/// Sends `parts` as one tar to the client's output of exporter `exporter_index`.
pub async fn send_filesystem(
    solver: &Solver,
    ctx: &SolveContext,
    parts: &[PlatformResult],
    exporter_index: usize,
) -> Result<(), SolveError> {
    let lease = ctx.lease().await?;
    let views = mount_results(solver, &lease, parts).await?;
    let roots: Vec<(String, PathBuf)> = views
        .iter()
        .map(|view| {
            let prefix = if views.len() == 1 {
                String::new()
            } else {
                view.dir_name.clone()
            };
            (prefix, view.mount.path().to_path_buf())
        })
        .collect();
    let session = solver
        .sessions
        .get(&ctx.session_id)
        .await
        .map_err(|_| SolveError::Other("the tar output needs the client's session".into()))?;
    let (sink, chunks) = mpsc::channel::<Bytes>(4);
    let writer = tokio::task::spawn_blocking(move || write_tree(&roots, sink));
    let sent = send_to_client(session.channel.clone(), exporter_index, chunks).await;
    let written = writer
        .await
        .map_err(|e| SolveError::Other(format!("the tar writer failed: {e}")))?;
    // Unmounted only once the writer is done with them.
    drop(views);
    sent?;
    written.map_err(|e| SolveError::Other(format!("writing the tar: {e}")))
}

/// Each root's tree under its prefix (the archive's root when empty).
fn write_tree(roots: &[(String, PathBuf)], sink: mpsc::Sender<Bytes>) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(ChunkWriter::new(sink));
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    for (prefix, root) in roots {
        let name = if prefix.is_empty() {
            "."
        } else {
            prefix.as_str()
        };
        tar.append_dir_all(name, root)?;
    }
    std::io::Write::flush(&mut tar.into_inner()?)
}
