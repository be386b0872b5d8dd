//! A content store the client serves on its session (containerd's Content service, one store
//! chosen per call by `buildkit-attachable-store-id`): the directories of `--export-cache
//! type=local,dest=DIR` and `--import-cache type=local,src=DIR` (`local:DIR`). Writes follow
//! containerd's proxy writer: STAT with the ref, size and digest, WRITEs of at most 1 MiB at
//! their offsets, COMMIT with the size and digest; a blob the store has already is written.
//! Facts: `docs/buildkit-remote-cache.md` §1.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nodekit_proto::containerd::services::content::v1::content_client::ContentClient;
use nodekit_proto::containerd::services::content::v1::{
    InfoRequest, ReadContentRequest, WriteAction, WriteContentRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The metadata naming the store a call is for.
pub const STORE_ID_KEY: &str = "buildkit-attachable-store-id";
/// Bytes per WRITE: buildctl's session server takes messages of at most 4 MiB.
const WRITE_CHUNK: usize = 1 << 20;

/// One store of a client's session.
#[derive(Clone)]
pub struct SessionContentStore {
    channel: Channel,
    store_id: String,
}

impl SessionContentStore {
    /// The store `store_id` (`local:<dir>`, the directory as the client named it).
    pub fn new(channel: Channel, store_id: &str) -> SessionContentStore {
        SessionContentStore {
            channel,
            store_id: store_id.to_string(),
        }
    }

    fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        let id = MetadataValue::try_from(self.store_id.as_str())
            .map_err(|_| Status::invalid_argument(format!("store id {:?}", self.store_id)))?;
        request.metadata_mut().insert(STORE_ID_KEY, id);
        Ok(request)
    }

    fn client(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }

    /// The size of blob `digest`, or None when the store does not have it.
    pub async fn size(&self, digest: &str) -> Result<Option<u64>, Status> {
        let request = self.request(InfoRequest {
            digest: digest.to_string(),
        })?;
        match self.client().info(request).await {
            Ok(answer) => Ok(answer.into_inner().info.map(|i| i.size.max(0) as u64)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// Streams blob `digest` into `sink` (the store's chunks, in order).
    pub async fn read(&self, digest: &str, sink: mpsc::Sender<Bytes>) -> Result<(), Status> {
        let request = self.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })?;
        let mut chunks = self.client().read(request).await?.into_inner();
        while let Some(chunk) = chunks.message().await? {
            if sink.send(chunk.data).await.is_err() {
                return Err(Status::cancelled(format!(
                    "the reader of {digest} went away"
                )));
            }
        }
        Ok(())
    }

    /// Writes blob `digest` of `size` bytes from `data`; a blob the store has is written.
    pub async fn write<S>(&self, digest: &str, size: u64, data: S) -> Result<(), Status>
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        let total = i64::try_from(size)
            .map_err(|_| Status::invalid_argument(format!("blob {digest}: size {size}")))?;
        let (requests, stream) = mpsc::channel(4);
        let feeder = tokio::spawn(feed(requests, digest.to_string(), total, data));
        let request = self.request(ReceiverStream::new(stream))?;
        let answered = async {
            let mut answers = self.client().write(request).await?.into_inner();
            // One answer per request, and (as containerd's server does) a repeat of the last.
            while answers.message().await?.is_some() {}
            Ok::<(), Status>(())
        }
        .await;
        feeder.abort();
        match answered {
            Err(status) if status.code() == Code::AlreadyExists => Ok(()),
            other => other,
        }
    }
}

/// The requests of one write: STAT, WRITEs at their offsets, COMMIT.
async fn feed<S>(requests: mpsc::Sender<WriteContentRequest>, digest: String, total: i64, data: S)
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let reference = format!("nodekit-{digest}");
    let stat = WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: reference.clone(),
        total,
        expected: digest.clone(),
        ..Default::default()
    };
    if requests.send(stat).await.is_err() {
        return;
    }
    let mut offset = 0i64;
    let mut data = std::pin::pin!(data);
    while let Some(mut piece) = data.next().await {
        while !piece.is_empty() {
            let chunk = piece.split_to(piece.len().min(WRITE_CHUNK));
            let length = chunk.len() as i64;
            let write = WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                offset,
                data: chunk,
                ..Default::default()
            };
            if requests.send(write).await.is_err() {
                return;
            }
            offset += length;
        }
    }
    let commit = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: reference,
        total,
        offset,
        expected: digest,
        ..Default::default()
    };
    let _ = requests.send(commit).await;
}
