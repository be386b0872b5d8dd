//! `moby.buildkit.secrets.v1.Secrets`: secret values given on the command line.

use std::collections::BTreeMap;

use nodekit_proto::moby::buildkit::secrets::v1::secrets_server::Secrets;
use nodekit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use tonic::{Request, Response, Status};

pub struct StaticSecrets {
    values: BTreeMap<String, Vec<u8>>,
}

impl StaticSecrets {
    pub fn new(values: BTreeMap<String, Vec<u8>>) -> Self {
        StaticSecrets { values }
    }
}

#[tonic::async_trait]
impl Secrets for StaticSecrets {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        // NotFound is what the daemon maps to "secret not provided" (optional secrets skip it).
        let data = self
            .values
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("secret {id} not found")))?;
        Ok(Response::new(GetSecretResponse { data }))
    }
}
