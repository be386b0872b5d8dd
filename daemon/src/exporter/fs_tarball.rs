//! The `tar` exporter: the result's filesystem as one tar, sent to the client through its
//! session's `FileSend`; with several platforms each under a directory named after it
//! (`linux_amd64/`, as buildkitd's `platform-split`). Written from a read-only view of the
//! result's snapshot on a blocking thread, symlinks kept as links.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

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
                view.dir_name()
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

/// Each root's tree under its prefix (the archive's root when empty), entries named as
/// buildkitd names them (`bin/`, `bin/sh`), in name order.
fn write_tree(roots: &[(String, PathBuf)], sink: mpsc::Sender<Bytes>) -> std::io::Result<()> {
    let mut tar = TreeTar {
        tar: tar::Builder::new(ChunkWriter::new(sink)),
        links: HashMap::new(),
    };
    for (prefix, root) in roots {
        // Hard links are per tree: each root is its own filesystem.
        tar.links.clear();
        let base = PathBuf::from(prefix);
        if !prefix.is_empty() {
            tar.append(&base, root, &std::fs::symlink_metadata(root)?)?;
        }
        tar.append_children(&base, root)?;
    }
    std::io::Write::flush(&mut tar.tar.into_inner()?)
}

struct TreeTar {
    tar: tar::Builder<ChunkWriter>,
    /// (device, inode) of files with several links already written, and their names.
    links: HashMap<(u64, u64), PathBuf>,
}

impl TreeTar {
    fn append_children(&mut self, name: &Path, dir: &Path) -> std::io::Result<()> {
        let mut children: Vec<_> = std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        children.sort();
        for child in children {
            let path = dir.join(&child);
            let meta = std::fs::symlink_metadata(&path)?;
            let child_name = name.join(&child);
            self.append(&child_name, &path, &meta)?;
            if meta.is_dir() {
                self.append_children(&child_name, &path)?;
            }
        }
        Ok(())
    }

    /// One entry; a file already written under another name is a hard link to it, as
    /// buildkitd writes them (the content once).
    fn append(&mut self, name: &Path, path: &Path, meta: &Metadata) -> std::io::Result<()> {
        let file_type = meta.file_type();
        if file_type.is_socket() {
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        if file_type.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                return self.tar.append_link(&mut header, name, first);
            }
            self.links.insert(key, name.to_path_buf());
        }
        if file_type.is_dir() {
            // `bin/`: a directory's name ends with a slash.
            return self
                .tar
                .append_data(&mut header, name.join(""), std::io::empty());
        }
        if file_type.is_symlink() {
            let target = std::fs::read_link(path)?;
            return self.tar.append_link(&mut header, name, target);
        }
        if file_type.is_file() {
            return self
                .tar
                .append_data(&mut header, name, std::fs::File::open(path)?);
        }
        // Devices and pipes: their header says it all.
        self.tar.append_data(&mut header, name, std::io::empty())
    }
}
