//! `containerd.services.content.v1.Content`: the client's local content stores, which the
//! daemon reads and writes over the session: a local cache export's `dest` and a local cache
//! import's `src` (`--export-cache type=local,dest=DIR`, `--import-cache type=local,src=DIR`).
//!
//! Every call names its store in the metadata `buildkit-attachable-store-id` (the first value
//! counts); the daemon asks for `local:<dir>` with the directory exactly as the user wrote it.
//! Info, Read, Write, Status, ListStatuses (without filters) and Abort are served; Update,
//! List and Delete are refused as Unimplemented, by name.

mod error;
mod ingest;
mod read;
mod store;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use nodekit_proto::containerd::services::content::v1::content_server::{Content, ContentServer};
use nodekit_proto::containerd::services::content::v1::{
    self as api, AbortRequest, DeleteContentRequest, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteContentRequest,
};
use nodekit_proto::MAX_MESSAGE;
use tonic::{Request, Response, Status, Streaming};

pub use read::CHUNK as READ_CHUNK;
use store::{BlobDigest, IngestStatus, LocalStore};

/// The metadata key naming the store a call is for.
pub const STORE_ID_KEY: &str = "buildkit-attachable-store-id";

/// The full names of the service's methods, as a session announces them.
pub const METHODS: [&str; 9] = [
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/List",
    "/containerd.services.content.v1.Content/Delete",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/ListStatuses",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
];

/// The store id of a local cache directory: `local:` and the directory as given.
pub fn local_store_id(dir: &str) -> String {
    format!("local:{dir}")
}

/// Local content stores by store id.
#[derive(Clone, Debug)]
pub struct ContentStores {
    stores: Arc<BTreeMap<String, Arc<LocalStore>>>,
}

impl ContentStores {
    /// Stores over `dirs` (store id to directory); a directory need not exist until a blob is
    /// written to it.
    pub fn new(dirs: BTreeMap<String, PathBuf>) -> ContentStores {
        let stores = dirs
            .into_iter()
            .map(|(id, dir)| (id, Arc::new(LocalStore::new(dir))))
            .collect();
        ContentStores {
            stores: Arc::new(stores),
        }
    }

    /// The gRPC service, with the message limit the session's other services have.
    pub fn into_server(self) -> ContentServer<ContentStores> {
        ContentServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The store `request` names.
    fn choose<T>(&self, request: &Request<T>) -> Result<Arc<LocalStore>, Status> {
        let value = request
            .metadata()
            .get(STORE_ID_KEY)
            .ok_or_else(|| {
                Status::invalid_argument(format!("request lacks metadata {STORE_ID_KEY:?}"))
            })?
            .to_str()
            .map_err(|_| Status::invalid_argument(format!("{STORE_ID_KEY} is not text")))?;
        self.stores
            .get(value)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("unknown store {value}")))
    }
}

/// Refuses a method this client does not offer.
fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "Content.{method} is not offered by the nodekit client's content stores"
    ))
}

fn status_to_api(status: IngestStatus) -> api::Status {
    api::Status {
        started_at: Some(status.started_at.into()),
        updated_at: Some(status.updated_at.into()),
        r#ref: status.reference,
        offset: status.offset as i64,
        total: status.total as i64,
        expected: status.expected,
    }
}

type Unsupported<T> = tokio_stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl Content for ContentStores {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let store = self.choose(&request)?;
        let digest = BlobDigest::parse(&request.get_ref().digest)?;
        let info = store.info(&digest)?;
        Ok(Response::new(InfoResponse {
            info: Some(api::Info {
                digest: digest.to_string(),
                size: info.size as i64,
                created_at: Some(info.modified.into()),
                updated_at: Some(info.modified.into()),
                labels: BTreeMap::new(),
            }),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        self.choose(&request)?;
        Err(unimplemented("Update"))
    }

    type ListStream = Unsupported<ListContentResponse>;

    async fn list(
        &self,
        request: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        self.choose(&request)?;
        Err(unimplemented("List"))
    }

    async fn delete(&self, request: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        self.choose(&request)?;
        Err(unimplemented("Delete"))
    }

    type ReadStream = read::ReadStream;

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let store = self.choose(&request)?;
        read::serve(&store, request.get_ref()).map(Response::new)
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let store = self.choose(&request)?;
        let status = store.status(&request.get_ref().r#ref)?;
        Ok(Response::new(StatusResponse {
            status: Some(status_to_api(status)),
        }))
    }

    async fn list_statuses(
        &self,
        request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let store = self.choose(&request)?;
        if !request.get_ref().filters.is_empty() {
            return Err(unimplemented("ListStatuses with filters"));
        }
        let statuses = store.statuses()?.into_iter().map(status_to_api).collect();
        Ok(Response::new(ListStatusesResponse { statuses }))
    }

    type WriteStream = write::WriteStream;

    async fn write(
        &self,
        request: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let store = self.choose(&request)?;
        Ok(Response::new(write::serve(store, request.into_inner())))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let store = self.choose(&request)?;
        store.abort(&request.get_ref().r#ref)?;
        Ok(Response::new(()))
    }
}
