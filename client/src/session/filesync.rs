//! `moby.filesync.v1.FileSync`: sends a local directory the daemon asks for by name, with the
//! patterns it names in the call's metadata.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nodekit_filesync::headers;
use nodekit_filesync::{send, SendOptions};
use nodekit_proto::fsutil::types::Packet;
use nodekit_proto::moby::filesync::v1::file_sync_server::FileSync;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

pub struct LocalDirs {
    dirs: BTreeMap<String, PathBuf>,
}

impl LocalDirs {
    pub fn new(dirs: BTreeMap<String, PathBuf>) -> Self {
        LocalDirs { dirs }
    }

    fn options(&self, metadata: &MetadataMap) -> Result<SendOptions, Status> {
        let name = values(metadata, headers::DIR_NAME)?
            .pop()
            .unwrap_or_default();
        let root = self.dirs.get(&name).cloned().ok_or_else(|| {
            Status::not_found(format!("no local directory {name:?} in this session"))
        })?;
        Ok(SendOptions {
            root,
            include_patterns: values(metadata, headers::INCLUDE_PATTERNS)?,
            exclude_patterns: values(metadata, headers::EXCLUDE_PATTERNS)?,
            follow_paths: values(metadata, headers::FOLLOW_PATHS)?,
            // Owners are not the build's business, as with buildctl.
            reset_owner: true,
            named_roots: Vec::new(),
        })
    }
}

/// Every value of `key`, decoded when the client query-escaped them (`<key>-encoded`).
fn values(metadata: &MetadataMap, key: &str) -> Result<Vec<String>, Status> {
    let raw: Vec<String> = metadata
        .get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let encoded = metadata
        .get(headers::encoded_key(key).as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(headers::is_encoded);
    headers::decode_values(&raw, encoded).map_err(|e| Status::invalid_argument(e.to_string()))
}

type PacketStream = ReceiverStream<Result<Packet, Status>>;

#[tonic::async_trait]
impl FileSync for LocalDirs {
    type DiffCopyStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let options = self.options(request.metadata())?;
        let incoming = request.into_inner();
        let (packets_tx, mut packets_rx) = tokio::sync::mpsc::channel::<Packet>(64);
        let (response_tx, response_rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(packet) = packets_rx.recv().await {
                if response_tx.send(Ok(packet)).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            if let Err(error) = send(options, incoming, packets_tx).await {
                tracing::warn!(%error, "sending a local directory failed");
            }
        });
        Ok(Response::new(ReceiverStream::new(response_rx)))
    }

    type TarStreamStream = PacketStream;

    async fn tar_stream(
        &self,
        _: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "TarStream is not offered by the nodekit client",
        ))
    }
}
