//! `moby.filesync.v1.Auth`: registry credentials from the user's docker config, as buildctl
//! answers them (an empty pair for a host it has nothing for). Tokens are fetched by the daemon.

use std::path::PathBuf;

use nodekit_oci::docker_config::from_docker_config;
use nodekit_proto::moby::filesync::v1::auth_server::Auth;
use nodekit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use tonic::{Request, Response, Status};

pub struct DockerConfigAuth {
    file: PathBuf,
}

impl DockerConfigAuth {
    pub fn new(file: PathBuf) -> Self {
        DockerConfigAuth { file }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, if there is one.
pub fn default_docker_config() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
    };
    Some(dir.join("config.json")).filter(|file| file.is_file())
}

#[tonic::async_trait]
impl Auth for DockerConfigAuth {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        let found = from_docker_config(&self.file, &host).map_err(|reason| {
            Status::failed_precondition(format!("{}: {reason}", self.file.display()))
        })?;
        let (username, secret) = found.map(|c| (c.username, c.secret)).unwrap_or_default();
        Ok(Response::new(CredentialsResponse { username, secret }))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented(
            "the nodekit client hands out credentials, not tokens",
        ))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}
