//! `moby.buildkit.v1.Control`.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use nodekit_proto::moby::buildkit::v1::control_server::Control;
use nodekit_proto::moby::buildkit::v1::types::BuildkitVersion;
use nodekit_proto::moby::buildkit::v1::{
    BuildHistoryEvent, BuildHistoryRequest, BytesMessage, DiskUsageRequest, DiskUsageResponse,
    InfoRequest, InfoResponse, ListWorkersRequest, ListWorkersResponse, PruneRequest, SolveRequest,
    SolveResponse, StatusRequest, StatusResponse, UpdateBuildHistoryRequest,
    UpdateBuildHistoryResponse, UsageRecord,
};
use tonic::{Request, Response, Status, Streaming};

use super::{worker_record, ApiState};
use crate::session;

pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub struct ControlService {
    state: Arc<ApiState>,
}

impl ControlService {
    pub fn new(state: Arc<ApiState>) -> Self {
        ControlService { state }
    }
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn disk_usage(
        &self,
        request: Request<DiskUsageRequest>,
    ) -> Result<Response<DiskUsageResponse>, Status> {
        let request = request.into_inner();
        let record =
            super::cache::disk_usage(&self.state, request.filter, request.age_limit).await?;
        Ok(Response::new(DiskUsageResponse { record }))
    }

    type PruneStream = BoxStream<UsageRecord>;

    async fn prune(
        &self,
        request: Request<PruneRequest>,
    ) -> Result<Response<Self::PruneStream>, Status> {
        let removed = super::cache::prune(&self.state, request.into_inner()).await?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            removed.into_iter().map(Ok),
        ))))
    }

    async fn solve(
        &self,
        request: Request<SolveRequest>,
    ) -> Result<Response<SolveResponse>, Status> {
        let exporter_response = super::solve::solve(&self.state, request.into_inner()).await?;
        Ok(Response::new(SolveResponse {
            exporter_response: exporter_response.into_iter().collect(),
        }))
    }

    type StatusStream = BoxStream<StatusResponse>;

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        let stream = super::solve::status(&self.state, &request.into_inner().r#ref).await?;
        Ok(Response::new(stream))
    }

    type SessionStream = BoxStream<BytesMessage>;

    async fn session(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let headers = SessionHeaders::from(request.metadata());
        let Some(id) = headers.id.clone() else {
            return Err(Status::invalid_argument(
                "session without x-docker-expose-session-uuid",
            ));
        };
        let (pipe, outgoing) = session::byte_pipe(request.into_inner());
        let channel = session::dial(pipe)
            .await
            .map_err(|e| Status::unavailable(format!("cannot open session {id}: {e}")))?;
        let session = Arc::new(session::Session::new(
            id.clone(),
            headers.shared_key,
            headers.methods,
            channel,
        ));
        self.state.sessions.register(session.clone());
        session::watch_health(self.state.sessions.clone(), session.clone());
        tracing::debug!(session = %id, "session connected");
        let state = self.state.clone();
        // The response stream ends when the client closes its side; then the session is gone.
        let outgoing = session::until_closed(outgoing, move || {
            tracing::debug!(session = %id, "session closed");
            state.sessions.remove(&id);
        });
        Ok(Response::new(Box::pin(outgoing)))
    }

    async fn list_workers(
        &self,
        _: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        let worker = self.state.worker()?;
        Ok(Response::new(ListWorkersResponse {
            record: vec![worker_record(
                &self.state.worker_id,
                worker,
                &self.state.config,
            )],
        }))
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            buildkit_version: Some(BuildkitVersion {
                package: "nodekit".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                revision: String::new(),
                ..Default::default()
            }),
        }))
    }

    type ListenBuildHistoryStream = BoxStream<BuildHistoryEvent>;

    async fn listen_build_history(
        &self,
        request: Request<BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        let listening = self.state.history()?.listen(&request.into_inner())?;
        let mut response = Response::new(super::history::events(listening));
        super::history::add_timestamp_header(&mut response);
        Ok(response)
    }

    async fn update_build_history(
        &self,
        request: Request<UpdateBuildHistoryRequest>,
    ) -> Result<Response<UpdateBuildHistoryResponse>, Status> {
        self.state.history()?.update(request.into_inner()).await?;
        Ok(Response::new(UpdateBuildHistoryResponse {}))
    }
}

/// The `x-docker-expose-session-*` headers of a `Session` call.
struct SessionHeaders {
    id: Option<String>,
    shared_key: String,
    methods: Vec<String>,
}

impl From<&tonic::metadata::MetadataMap> for SessionHeaders {
    fn from(metadata: &tonic::metadata::MetadataMap) -> Self {
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        SessionHeaders {
            id: text("x-docker-expose-session-uuid"),
            shared_key: text("x-docker-expose-session-sharedkey").unwrap_or_default(),
            methods: metadata
                .get_all("x-docker-expose-session-grpc-method")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect(),
        }
    }
}
