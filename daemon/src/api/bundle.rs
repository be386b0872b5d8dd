//! `nodekit.cache.v1.CacheBundle`: nodekit's own service for `nodekit cache export` and
//! `import` (stock BuildKit clients never call it). The work is the cache index's.

use std::sync::Arc;

use nodekit_proto::nodekit::cache::v1::cache_bundle_server::CacheBundle;
use nodekit_proto::nodekit::cache::v1::export_message::Message;
use nodekit_proto::nodekit::cache::v1::{
    ExportMessage, ExportRequest, ExportSummary, ImportChunk, ImportResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::ApiState;
use crate::solver::cache::index::CacheIndex;
use crate::solver::cache::{ImportFailure, Selection};

pub struct CacheBundleService {
    state: Arc<ApiState>,
}

impl CacheBundleService {
    pub fn new(state: Arc<ApiState>) -> Self {
        CacheBundleService { state }
    }

    fn index(&self) -> Result<Arc<CacheIndex>, Status> {
        self.state
            .solver()?
            .index
            .clone()
            .ok_or_else(|| Status::failed_precondition("this nodekitd keeps no build cache index"))
    }
}

#[tonic::async_trait]
impl CacheBundle for CacheBundleService {
    type ExportStream = ReceiverStream<Result<ExportMessage, Status>>;

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let index = self.index()?;
        let request = request.into_inner();
        let keys = match request.build_ref.as_str() {
            "" => None,
            id => Some(self.state.jobs.recent.keys_of(id).ok_or_else(|| {
                Status::not_found(format!(
                    "no recent build {id}: nodekitd remembers the records of its last {} builds since it started",
                    crate::solver::recent::KEPT
                ))
            })?),
        };
        let selection = Selection {
            filters: request.filters,
            keys,
        };
        let (messages, stream) = mpsc::channel(4);
        tokio::spawn(async move {
            let (data, mut received) = mpsc::channel(4);
            let forward = {
                let messages = messages.clone();
                async move {
                    while let Some(data) = received.recv().await {
                        let message = Some(Message::Data(data));
                        if messages.send(Ok(ExportMessage { message })).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let (exported, ()) = tokio::join!(index.export_bundle(selection, data), forward);
            let last = match exported {
                Ok(summary) => Ok(ExportMessage {
                    message: Some(Message::Summary(ExportSummary {
                        records: summary.records,
                        blobs: summary.blobs,
                        skipped: summary.skipped,
                    })),
                }),
                Err(message) => Err(Status::internal(format!("cache export: {message}"))),
            };
            let _ = messages.send(last).await;
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn import(
        &self,
        request: Request<Streaming<ImportChunk>>,
    ) -> Result<Response<ImportResponse>, Status> {
        let index = self.index()?;
        let mut chunks = request.into_inner();
        let (data, received) = mpsc::channel(4);
        let feed = async move {
            // A broken client stream ends the input: the bundle then reads as truncated.
            while let Ok(Some(chunk)) = chunks.message().await {
                if data.send(chunk.data).await.is_err() {
                    break;
                }
            }
        };
        let (imported, ()) = tokio::join!(index.import_bundle(received), feed);
        match imported {
            Ok(summary) => Ok(Response::new(ImportResponse {
                records_imported: summary.records_imported,
                records_present: summary.records_present,
                blobs_written: summary.blobs_written,
                blobs_present: summary.blobs_present,
            })),
            Err(ImportFailure::Bundle(message)) => Err(Status::invalid_argument(format!(
                "cache import: {message}; nothing was imported"
            ))),
            Err(ImportFailure::Node(message)) => Err(Status::internal(format!(
                "cache import: {message}; nothing was imported"
            ))),
        }
    }
}
