//! The wire side of build history: `ListenBuildHistory`'s event stream, and the read-only
//! containerd content service through which clients fetch a record's blobs (its progress log:
//! `buildx history logs`), as buildkitd serves its history content store.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use nodekit_proto::containerd::services::content::v1::content_server::Content;
use nodekit_proto::containerd::services::content::v1::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse,
    WriteContentRequest, WriteContentResponse,
};
use nodekit_proto::moby::buildkit::v1::BuildHistoryEvent;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status, Streaming};

use super::control::BoxStream;
use super::ApiState;
use crate::history::Listening;

/// The largest chunk of a blob one read response carries.
const CHUNK: usize = 1 << 20;

/// The events of a `ListenBuildHistory` call: what was there, then live ones for its reference
/// (every build when none) until the client goes away.
pub fn events(listening: Listening) -> BoxStream<BuildHistoryEvent> {
    let first = futures::stream::iter(listening.first.into_iter().map(Ok));
    let Some(live) = listening.live else {
        return Box::pin(first);
    };
    let reference = listening.reference;
    let live = futures::stream::unfold(live, move |mut live| {
        let reference = reference.clone();
        async move {
            loop {
                match live.recv().await {
                    Ok(event) if wanted(&event, &reference) => return Some((Ok(event), live)),
                    Ok(_) => continue,
                    Err(RecvError::Closed) => return None,
                    Err(RecvError::Lagged(missed)) => {
                        let lagged = Status::resource_exhausted(format!(
                            "the listener fell {missed} build history events behind"
                        ));
                        return Some((Err(lagged), live));
                    }
                }
            }
        }
    });
    Box::pin(futures::StreamExt::chain(first, live))
}

fn wanted(event: &BuildHistoryEvent, reference: &str) -> bool {
    reference.is_empty() || event.record.as_ref().is_some_and(|r| r.r#ref == reference)
}

/// buildkitd's `buildkit-current-timestamp` header (clients correct their clock skew by it).
pub fn add_timestamp_header<T>(response: &mut Response<T>) {
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    if let Ok(value) = now.parse() {
        response
            .metadata_mut()
            .insert("buildkit-current-timestamp", value);
    }
}

/// `containerd.services.content.v1.Content`, read-only, over the history's blobs.
pub struct HistoryContent {
    state: Arc<ApiState>,
}

impl HistoryContent {
    pub fn new(state: Arc<ApiState>) -> Self {
        HistoryContent { state }
    }

    fn blob(&self, digest: &str) -> Result<Bytes, Status> {
        let blob = self.state.history()?.blob(digest)?;
        blob.map(Bytes::from)
            .ok_or_else(|| Status::not_found(format!("content digest {digest}: not found")))
    }
}

fn read_only(method: &str) -> Status {
    Status::unimplemented(format!(
        "content {method}: nodekitd's content service only reads build history blobs"
    ))
}

type Unsupported<T> = tokio_stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl Content for HistoryContent {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let digest = request.into_inner().digest;
        let blob = self.blob(&digest)?;
        Ok(Response::new(InfoResponse {
            info: Some(Info {
                digest,
                size: blob.len() as i64,
                created_at: None,
                updated_at: None,
                labels: BTreeMap::new(),
            }),
        }))
    }

    async fn update(&self, _: Request<UpdateRequest>) -> Result<Response<UpdateResponse>, Status> {
        Err(read_only("Update"))
    }

    type ListStream = Unsupported<ListContentResponse>;

    async fn list(
        &self,
        _: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        Err(read_only("List"))
    }

    async fn delete(&self, _: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        Err(read_only("Delete"))
    }

    type ReadStream = BoxStream<ReadContentResponse>;

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let request = request.into_inner();
        let blob = self.blob(&request.digest)?;
        let start = usize::try_from(request.offset).unwrap_or(0);
        if start > blob.len() {
            return Err(Status::out_of_range(format!(
                "read past object length {} bytes",
                blob.len()
            )));
        }
        let rest = blob.len() - start;
        let length = usize::try_from(request.size)
            .ok()
            .filter(|&l| l > 0 && l <= rest)
            .unwrap_or(rest);
        let range = blob.slice(start..start + length);
        // Offsets count from the start of the read, as containerd's server sends them.
        let chunks: Vec<_> = (0..length)
            .step_by(CHUNK)
            .map(|at| {
                Ok(ReadContentResponse {
                    offset: at as i64,
                    data: range.slice(at..(at + CHUNK).min(length)),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Err(read_only("Status"))
    }

    async fn list_statuses(
        &self,
        _: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        Err(read_only("ListStatuses"))
    }

    type WriteStream = Unsupported<WriteContentResponse>;

    async fn write(
        &self,
        _: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        Err(read_only("Write"))
    }

    async fn abort(&self, _: Request<AbortRequest>) -> Result<Response<()>, Status> {
        Err(read_only("Abort"))
    }
}
