//! `moby.filesync.v1.FileSend` on the client's side: the daemon sends an exporter's file (an
//! `oci`, `docker` or `tar` output) as a stream of bytes, the exporter's index in
//! `buildkit-attachable-exporter-id`; it is written to the output's file (`-`: standard output)
//! as it arrives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nodekit_proto::moby::filesync::v1::file_send_server::{FileSend, FileSendServer};
use nodekit_proto::moby::filesync::v1::BytesMessage;
use nodekit_proto::MAX_MESSAGE;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tonic::{Request, Response, Status, Streaming};

/// The method the session advertises.
pub const METHOD: &str = "/moby.filesync.v1.FileSend/DiffCopy";

const EXPORTER_ID: &str = "buildkit-attachable-exporter-id";

/// Output files by exporter index.
pub struct FileOutputs {
    files: BTreeMap<usize, PathBuf>,
}

impl FileOutputs {
    pub fn new(files: BTreeMap<usize, PathBuf>) -> FileOutputs {
        FileOutputs { files }
    }

    pub fn into_server(self) -> FileSendServer<FileOutputs> {
        FileSendServer::new(self).max_decoding_message_size(MAX_MESSAGE)
    }

    fn file_of<T>(&self, request: &Request<T>) -> Result<&Path, Status> {
        let index: usize = request
            .metadata()
            .get(EXPORTER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Status::invalid_argument(format!("request lacks {EXPORTER_ID}")))?;
        self.files
            .get(&index)
            .map(PathBuf::as_path)
            .ok_or_else(|| Status::not_found(format!("no file output for exporter {index}")))
    }
}

#[tonic::async_trait]
impl FileSend for FileOutputs {
    type DiffCopyStream = futures::stream::Empty<Result<BytesMessage, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let path = self.file_of(&request)?.to_path_buf();
        let mut incoming = request.into_inner();
        let mut sink: Box<dyn AsyncWrite + Unpin + Send> = if path == Path::new("-") {
            Box::new(tokio::io::stdout())
        } else {
            let file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Status::internal(format!("creating {}: {e}", path.display())))?;
            Box::new(tokio::io::BufWriter::new(file))
        };
        let failed =
            |e: std::io::Error| Status::internal(format!("writing {}: {e}", path.display()));
        while let Some(message) = incoming.message().await? {
            sink.write_all(&message.data).await.map_err(failed)?;
        }
        sink.flush().await.map_err(failed)?;
        Ok(Response::new(futures::stream::empty()))
    }
}
