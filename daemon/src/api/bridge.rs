//! `moby.buildkit.v1.frontend.LLBBridge`: the frontend gateway, served on the Control
//! connection, where every call names its build with the `buildkit-controlapi-buildid`
//! metadata, and on a frontend image's stdio, where every call is that frontend's build's.

use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::frontend::llb_bridge_server::LlbBridge;
use nodekit_proto::moby::buildkit::v1::frontend::{
    self as wire, result::Result as WireResult, EvaluateRequest, EvaluateResponse, ExecMessage,
    InputsRequest, InputsResponse, NewContainerRequest, NewContainerResponse, PingRequest,
    PongResponse, ReadDirRequest, ReadDirResponse, ReadFileRequest, ReadFileResponse,
    ReleaseContainerRequest, ReleaseContainerResponse, ResolveImageConfigRequest,
    ResolveImageConfigResponse, ResolveSourceMetaRequest, ResolveSourceMetaResponse, ReturnRequest,
    ReturnResponse, StatFileRequest, StatFileResponse, WarnRequest, WarnResponse,
};
use tonic::{Request, Response, Status, Streaming};

use std::collections::BTreeMap;

use nodekit_proto::pb;

use super::control::BoxStream;
use super::errors::to_status;
use super::{worker_record, ApiState};
use crate::frontend::{self, FrontendRequest};
use crate::gateway::{caps, GatewayBuild, ReadRange, Returned, ReturnedResult};
use crate::oci::Platform;
use crate::session::SessionCredentials;
use crate::worker::ResolveMode;

/// The metadata key naming the build a gateway call belongs to.
const BUILD_ID_HEADER: &str = "buildkit-controlapi-buildid";

pub struct BridgeService {
    state: Arc<ApiState>,
    /// The one build a frontend image's connection serves.
    only: Option<Arc<GatewayBuild>>,
}

impl BridgeService {
    pub fn new(state: Arc<ApiState>) -> Self {
        BridgeService { state, only: None }
    }

    /// The service of a frontend image's connection: every call is `build`'s.
    pub fn for_build(state: Arc<ApiState>, build: Arc<GatewayBuild>) -> Self {
        BridgeService {
            state,
            only: Some(build),
        }
    }

    async fn build<T>(&self, request: &Request<T>) -> Result<Arc<GatewayBuild>, Status> {
        if let Some(build) = &self.only {
            return Ok(build.clone());
        }
        let id = request
            .metadata()
            .get(BUILD_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::invalid_argument(format!("gateway call without {BUILD_ID_HEADER} metadata"))
            })?;
        self.state.gateways.get(id).await.ok_or_else(|| {
            Status::not_found(format!(
                "no gateway build {id} (it has ended or never started)"
            ))
        })
    }
}

#[tonic::async_trait]
impl LlbBridge for BridgeService {
    async fn resolve_image_config(
        &self,
        request: Request<ResolveImageConfigRequest>,
    ) -> Result<Response<ResolveImageConfigResponse>, Status> {
        let worker = self.state.worker()?;
        let build_session = match self.build(&request).await {
            Ok(build) => build.ctx.session_id.clone(),
            Err(_) => String::new(),
        };
        let request = request.into_inner();
        let session_id = match request.session_id.as_str() {
            "" => build_session.as_str(),
            asked => asked,
        };
        let credentials = SessionCredentials::new(self.state.sessions.clone(), session_id);
        let platform = request
            .platform
            .as_ref()
            .map(|p| {
                Platform::new(
                    &p.os,
                    &p.architecture,
                    Some(p.variant.as_str()).filter(|v| !v.is_empty()),
                )
            })
            .unwrap_or_else(Platform::native);
        let mode = ResolveMode::parse(&request.resolve_mode).map_err(Status::invalid_argument)?;
        let image = worker
            .resolve_image_with(&request.r#ref, &platform, mode, &credentials)
            .await
            .map_err(|e| Status::not_found(format!("resolving {}: {e}", request.r#ref)))?;
        let config =
            serde_json::to_vec(&image.image.config).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ResolveImageConfigResponse {
            digest: image.target.digest.clone(),
            config,
            r#ref: request.r#ref,
        }))
    }

    async fn resolve_source_meta(
        &self,
        _: Request<ResolveSourceMetaRequest>,
    ) -> Result<Response<ResolveSourceMetaResponse>, Status> {
        Err(Status::unimplemented("ResolveSourceMeta is not supported by nodekitd (cap source.metaresolver is not advertised)"))
    }

    async fn solve(
        &self,
        request: Request<wire::SolveRequest>,
    ) -> Result<Response<wire::SolveResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        build
            .ctx
            .remote_cache
            .add_entries(&cache_entries(&request.cache_imports), &build.ctx.job);
        let result = match request.frontend.as_str() {
            "" => solve_definition(&build, request.definition.clone().unwrap_or_default()).await?,
            name => {
                super::frontend_allowed(&self.state, name)?;
                solve_frontend(&build, name, &request).await?
            }
        };
        if request.r#final {
            // Pre-`return` clients hand the result back with the last Solve.
            let returned = returned_result(&build, result.result.clone(), result.metadata.clone())?;
            build
                .finish(Returned::Result(returned))
                .map_err(to_status)?;
        }
        Ok(Response::new(if request.allow_result_return {
            wire::SolveResponse {
                result: Some(ids_for(result, request.allow_result_array_ref)),
                ..Default::default()
            }
        } else {
            wire::SolveResponse {
                r#ref: single_id(&result)?,
                ..Default::default()
            }
        }))
    }

    async fn read_file(
        &self,
        request: Request<ReadFileRequest>,
    ) -> Result<Response<ReadFileResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        let view = build.view(&request.r#ref).await.map_err(to_status)?;
        let range = request.range.map(|r| ReadRange {
            offset: r.offset.max(0) as u64,
            length: r.length.max(0) as u64,
        });
        let data =
            crate::gateway::read_file(view.path(), &request.file_path, range).map_err(to_status)?;
        Ok(Response::new(ReadFileResponse { data }))
    }

    async fn read_dir(
        &self,
        request: Request<ReadDirRequest>,
    ) -> Result<Response<ReadDirResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        let view = build.view(&request.r#ref).await.map_err(to_status)?;
        let entries =
            crate::gateway::read_dir(view.path(), &request.dir_path, &request.include_pattern)
                .map_err(to_status)?;
        Ok(Response::new(ReadDirResponse { entries }))
    }

    async fn stat_file(
        &self,
        request: Request<StatFileRequest>,
    ) -> Result<Response<StatFileResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        let view = build.view(&request.r#ref).await.map_err(to_status)?;
        let stat = crate::gateway::stat_file(view.path(), &request.path).map_err(to_status)?;
        Ok(Response::new(StatFileResponse { stat: Some(stat) }))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        // Every solve is evaluated at once; checking the ref exists is all that is left.
        let build = self.build(&request).await?;
        build
            .result(&request.into_inner().r#ref)
            .map_err(to_status)?;
        Ok(Response::new(EvaluateResponse {}))
    }

    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PongResponse>, Status> {
        let workers = match self.state.worker() {
            Ok(worker) => vec![worker_record(
                &self.state.worker_id,
                worker,
                &self.state.config,
            )],
            Err(_) => Vec::new(),
        };
        Ok(Response::new(PongResponse {
            frontend_api_caps: caps::records(caps::FRONTEND_API),
            llb_caps: caps::records(caps::LLB),
            workers,
        }))
    }

    async fn r#return(
        &self,
        request: Request<ReturnRequest>,
    ) -> Result<Response<ReturnResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        let returned = match request.error.filter(|e| e.code != 0) {
            Some(error) => Returned::Error(error),
            None => {
                let result = request.result.unwrap_or_default();
                Returned::Result(returned_result(&build, result.result, result.metadata)?)
            }
        };
        build.finish(returned).map_err(to_status)?;
        Ok(Response::new(ReturnResponse {}))
    }

    async fn inputs(
        &self,
        request: Request<InputsRequest>,
    ) -> Result<Response<InputsResponse>, Status> {
        // A frontend image's build has its request's inputs; a client-side gateway build none.
        let build = self.build(&request).await?;
        Ok(Response::new(InputsResponse {
            definitions: build.inputs.clone(),
        }))
    }

    async fn new_container(
        &self,
        request: Request<NewContainerRequest>,
    ) -> Result<Response<NewContainerResponse>, Status> {
        let build = self.build(&request).await?;
        build
            .containers
            .create(&build, request.into_inner())
            .await?;
        Ok(Response::new(NewContainerResponse {}))
    }

    async fn release_container(
        &self,
        request: Request<ReleaseContainerRequest>,
    ) -> Result<Response<ReleaseContainerResponse>, Status> {
        let build = self.build(&request).await?;
        let id = request.into_inner().container_id;
        build.containers.release(&id).await?;
        Ok(Response::new(ReleaseContainerResponse {}))
    }

    type ExecProcessStream = BoxStream<ExecMessage>;

    async fn exec_process(
        &self,
        request: Request<Streaming<ExecMessage>>,
    ) -> Result<Response<Self::ExecProcessStream>, Status> {
        let build = self.build(&request).await?;
        let replies = crate::gateway::exec_process(build, request.into_inner());
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(replies),
        )))
    }

    async fn read_file_container(
        &self,
        _: Request<ReadFileRequest>,
    ) -> Result<Response<ReadFileResponse>, Status> {
        Err(interactive_unsupported())
    }

    async fn read_dir_container(
        &self,
        _: Request<ReadDirRequest>,
    ) -> Result<Response<ReadDirResponse>, Status> {
        Err(interactive_unsupported())
    }

    async fn stat_file_container(
        &self,
        _: Request<StatFileRequest>,
    ) -> Result<Response<StatFileResponse>, Status> {
        Err(interactive_unsupported())
    }

    async fn warn(&self, request: Request<WarnRequest>) -> Result<Response<WarnResponse>, Status> {
        let build = self.build(&request).await?;
        let request = request.into_inner();
        build.ctx.job.progress.warning(request);
        Ok(Response::new(WarnResponse {}))
    }
}

/// Solves an LLB definition within the build.
async fn solve_definition(
    build: &GatewayBuild,
    definition: pb::Definition,
) -> Result<wire::Result, Status> {
    let id = build.solve(&definition).await.map_err(to_status)?;
    let reference = wire::Ref {
        id,
        def: Some(definition),
    };
    Ok(wire::Result {
        result: Some(WireResult::Ref(reference)),
        ..Default::default()
    })
}

/// Runs a built-in frontend within the build; its refs get ids the client can name.
async fn solve_frontend(
    build: &Arc<GatewayBuild>,
    name: &str,
    request: &wire::SolveRequest,
) -> Result<wire::Result, Status> {
    let frontend_request = FrontendRequest {
        options: &request.frontend_opt,
        inputs: &request.frontend_inputs,
    };
    let returned = frontend::run(name, build, frontend_request)
        .await
        .map_err(to_status)?;
    let mut refs: BTreeMap<String, wire::Ref> = returned
        .refs
        .into_iter()
        .map(|(key, result)| {
            (
                key,
                wire::Ref {
                    id: build.adopt(result),
                    def: None,
                },
            )
        })
        .collect();
    let result = match (refs.len(), refs.remove("")) {
        (1, Some(single)) => WireResult::Ref(single),
        _ => WireResult::Refs(wire::RefMap { refs }),
    };
    Ok(wire::Result {
        result: Some(result),
        metadata: returned.metadata,
        ..Default::default()
    })
}

/// The result as the client can read it: refs with their definitions with
/// `allowResultArrayRef`, else bare ids (the pre-`proto.refarray` form), as upstream answers.
fn ids_for(mut result: wire::Result, array_refs: bool) -> wire::Result {
    if array_refs {
        return result;
    }
    result.result = match result.result {
        Some(WireResult::Ref(reference)) => Some(WireResult::RefDeprecated(reference.id)),
        Some(WireResult::Refs(map)) => Some(WireResult::RefsDeprecated(wire::RefMapDeprecated {
            refs: map.refs.into_iter().map(|(k, r)| (k, r.id)).collect(),
        })),
        other => other,
    };
    result
}

/// The one ref id of a result, for clients without `allowResultReturn`.
fn single_id(result: &wire::Result) -> Result<String, Status> {
    match &result.result {
        Some(WireResult::Ref(reference)) => Ok(reference.id.clone()),
        _ => Err(Status::failed_precondition(
            "a multi-platform result needs allowResultReturn",
        )),
    }
}

fn interactive_unsupported() -> Status {
    Status::unimplemented("reading files of gateway containers is not supported by nodekitd (ReadFileContainer, ReadDirContainer and StatFileContainer are not in BuildKit v0.24 either)")
}

/// The returned result with its ref ids resolved to this build's results.
fn returned_result(
    build: &GatewayBuild,
    result: Option<WireResult>,
    metadata: std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<ReturnedResult, Status> {
    let mut returned = ReturnedResult {
        metadata,
        ..Default::default()
    };
    let lookup = |id: &str| build.result(id).map_err(to_status);
    match result {
        None => {}
        Some(WireResult::RefDeprecated(id)) => {
            returned.refs.insert(String::new(), lookup(&id)?);
        }
        Some(WireResult::Ref(reference)) => {
            returned.refs.insert(String::new(), lookup(&reference.id)?);
        }
        Some(WireResult::RefsDeprecated(map)) => {
            for (key, id) in map.refs {
                returned.refs.insert(key, lookup(&id)?);
            }
        }
        Some(WireResult::Refs(map)) => {
            for (key, reference) in map.refs {
                returned.refs.insert(key, lookup(&reference.id)?);
            }
        }
    }
    Ok(returned)
}

/// A frontend's cache imports as the control API's entries (the same message, generated twice).
fn cache_entries(
    entries: &[wire::CacheOptionsEntry],
) -> Vec<nodekit_proto::moby::buildkit::v1::CacheOptionsEntry> {
    entries
        .iter()
        .map(|e| nodekit_proto::moby::buildkit::v1::CacheOptionsEntry {
            r#type: e.r#type.clone(),
            attrs: e.attrs.clone(),
        })
        .collect()
}
