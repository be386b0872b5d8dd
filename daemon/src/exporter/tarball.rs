//! The `oci` and `docker` exporters' tarball: the image as an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`; the `docker` one adds Docker's `manifest.json`), written
//! on a blocking thread as blobs stream out of containerd and sent to the client through its
//! session's `FileSend` (the exporter's index in `buildkit-attachable-exporter-id`), never
//! staged whole in memory or on the node's disk.

use std::collections::BTreeMap;

use bytes::Bytes;
use nodekit_proto::moby::filesync::v1::file_send_client::FileSendClient;
use nodekit_proto::moby::filesync::v1::BytesMessage;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::children::{image_blobs, Children};
use crate::chunks::{ChunkReader, ChunkWriter};
use crate::solver::SolveError;
use crate::worker::images::normalize_reference;
use crate::worker::{Descriptor, Worker};

/// The metadata naming the exporter a FileSend call is for.
const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";

/// Which layout the tarball has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarballFormat {
    Oci,
    /// An OCI layout with Docker's `manifest.json` (what `docker load` reads).
    Docker,
}

/// One tarball to send: the image, its names, the exporter it belongs to.
pub struct Tarball<'a> {
    pub format: TarballFormat,
    pub top: &'a Descriptor,
    pub names: &'a [String],
    pub exporter_index: usize,
}

/// What the writing thread is handed, in tar order.
enum Entry {
    File(String, Vec<u8>),
    /// A blob's path and size, then its bytes as they are read from containerd.
    Blob(String, u64, mpsc::Receiver<Vec<u8>>),
}

impl Tarball<'_> {
    /// Streams the tarball to the client's FileSend on `session`.
    pub async fn send(&self, worker: &Worker, session: Channel) -> Result<(), SolveError> {
        let blobs = image_blobs(worker, self.top).await?;
        let mut files = vec![
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".to_string(), self.index_json()?),
        ];
        if self.format == TarballFormat::Docker {
            files.push(("manifest.json".into(), self.docker_manifest(worker).await?));
        }
        let (sink, chunks) = mpsc::channel::<Bytes>(4);
        let (entries, received) = mpsc::channel::<Entry>(1);
        let writer = tokio::task::spawn_blocking(move || write_tar(received, sink));
        let sending = send_to_client(session, self.exporter_index, chunks);
        let feeding = feed(worker, files, &blobs, entries);
        let (sent, fed) = tokio::join!(sending, feeding);
        let written = writer
            .await
            .map_err(|e| SolveError::Other(format!("the tarball writer failed: {e}")))?;
        // The client's error says more when the writer stopped because it went away.
        sent?;
        fed?;
        written.map_err(|e| SolveError::Other(format!("writing the tarball: {e}")))
    }

    /// `index.json`: the image once per name (containerd's and OCI's name annotations), or
    /// once without a name; each entry with the image descriptor's annotations
    /// (`annotation-index-descriptor.KEY`, or `annotation-manifest-descriptor.KEY` for an image
    /// of one manifest), as containerd's archive writer copies them.
    fn index_json(&self) -> Result<Vec<u8>, SolveError> {
        let entry = |name: Option<(&String, &str)>| {
            let mut entry = json!({
                "mediaType": self.top.media_type,
                "digest": self.top.digest,
                "size": self.top.size,
            });
            let mut annotations: BTreeMap<&str, &str> = self
                .top
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if let Some((name, tag)) = name {
                annotations.insert("io.containerd.image.name", name);
                annotations.insert("org.opencontainers.image.ref.name", tag);
            }
            if !annotations.is_empty() {
                entry["annotations"] = json!(annotations);
            }
            entry
        };
        let mut manifests = Vec::new();
        for name in self.names {
            let reference = normalize_reference(name)
                .map_err(|e| SolveError::InvalidDefinition(e.to_string()))?;
            manifests.push(entry(Some((name, reference.tag().unwrap_or("latest")))));
        }
        if manifests.is_empty() {
            manifests.push(entry(None));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": crate::oci::OCI_INDEX,
            "manifests": manifests,
        });
        Ok(index.to_string().into_bytes())
    }

    /// Docker's `manifest.json`: one image's config, names and layers (a single platform).
    async fn docker_manifest(&self, worker: &Worker) -> Result<Vec<u8>, SolveError> {
        if crate::oci::is_index(&self.top.media_type) {
            return Err(SolveError::Unsupported(
                "docker exporter does not currently support exporting manifest lists".into(),
            ));
        }
        let (children, _) = Children::of(worker, self.top)
            .await
            .map_err(SolveError::Other)?;
        let config = children
            .config
            .ok_or_else(|| SolveError::Other("the image manifest has no config".into()))?;
        let manifest = json!([{
            "Config": blob_path(&config.digest),
            "RepoTags": self.names,
            "Layers": children.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
        }]);
        Ok(manifest.to_string().into_bytes())
    }
}

/// Sends what a writer produces to the client's FileSend for exporter `exporter_index`,
/// half-closes, and waits for the client to finish writing it.
pub(super) async fn send_to_client(
    session: Channel,
    exporter_index: usize,
    chunks: mpsc::Receiver<Bytes>,
) -> Result<(), SolveError> {
    let messages = ReceiverStream::new(chunks).map(|data| BytesMessage {
        data: data.to_vec(),
    });
    let mut request = tonic::Request::new(messages);
    let id = tonic::metadata::MetadataValue::from(exporter_index as u64);
    request.metadata_mut().insert(EXPORTER_ID, id);
    let failed = |e: tonic::Status| {
        SolveError::Other(format!("sending the output to the client: {}", e.message()))
    };
    let mut answers = FileSendClient::new(session)
        .diff_copy(request)
        .await
        .map_err(failed)?
        .into_inner();
    while answers.message().await.map_err(failed)?.is_some() {}
    Ok(())
}

/// Hands the writer the files, then each blob as containerd streams it.
async fn feed(
    worker: &Worker,
    files: Vec<(String, Vec<u8>)>,
    blobs: &[Descriptor],
    entries: mpsc::Sender<Entry>,
) -> Result<(), SolveError> {
    let gone = || SolveError::Other("the tarball writer stopped".into());
    for (path, bytes) in files {
        entries
            .send(Entry::File(path, bytes))
            .await
            .map_err(|_| gone())?;
    }
    for blob in blobs {
        let (chunks, received) = mpsc::channel(4);
        let entry = Entry::Blob(blob_path(&blob.digest), blob.size.max(0) as u64, received);
        entries.send(entry).await.map_err(|_| gone())?;
        worker
            .read_blob_into(&blob.digest, chunks)
            .await
            .map_err(|e| SolveError::worker("reading a blob for the tarball", e))?;
    }
    Ok(())
}

/// The writing thread: a tar of the entries in the order they arrive.
fn write_tar(mut entries: mpsc::Receiver<Entry>, sink: mpsc::Sender<Bytes>) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(ChunkWriter::new(sink));
    tar.mode(tar::HeaderMode::Deterministic);
    while let Some(entry) = entries.blocking_recv() {
        let (path, size, mut data): (String, u64, Box<dyn std::io::Read>) = match entry {
            Entry::File(path, bytes) => (
                path,
                bytes.len() as u64,
                Box::new(std::io::Cursor::new(bytes)),
            ),
            Entry::Blob(path, size, chunks) => (path, size, Box::new(ChunkReader::new(chunks))),
        };
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &path, &mut data)?;
    }
    std::io::Write::flush(&mut tar.into_inner()?)
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_json_carries_the_descriptors_annotations_beside_the_names() {
        let top = Descriptor {
            media_type: crate::oci::OCI_INDEX.into(),
            digest: "sha256:aa".into(),
            size: 3,
            annotations: [("org.example.k".to_string(), "v".to_string())].into(),
        };
        let names = ["docker.io/library/app:1".to_string()];
        let tarball = Tarball {
            format: TarballFormat::Oci,
            top: &top,
            names: &names,
            exporter_index: 0,
        };
        let index: serde_json::Value =
            serde_json::from_slice(&tarball.index_json().unwrap()).unwrap();
        let annotations = &index["manifests"][0]["annotations"];
        assert_eq!(annotations["org.example.k"], "v");
        assert_eq!(annotations["org.opencontainers.image.ref.name"], "1");
        let nameless = Tarball {
            names: &[],
            ..tarball
        };
        let index: serde_json::Value =
            serde_json::from_slice(&nameless.index_json().unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"],
            json!({"org.example.k": "v"})
        );
    }
}
