//! Reading an artifact other than a base image from a registry (a build cache's manifest,
//! config and layers): the registry's endpoints in order (mirrors first, as a pull), the
//! client's credentials first, layers streamed into the content store under a lease.

use oci_spec::distribution::Reference;
use oci_spec::image::Descriptor as OciDescriptor;

use super::credentials::{self, auth_host, CredentialSource};
use super::pull::{endpoint_reference, manifest_reference, Fetcher};
use crate::error::{WorkerError, WorkerResult};
use crate::{Lease, Worker};

/// A repository some endpoint of its registry answered for.
pub struct RegistryReader {
    fetcher: Fetcher,
    /// The manifest `reference` names, as that endpoint answered it, and its digest.
    pub top: (Vec<u8>, String),
}

impl RegistryReader {
    /// Finds the manifest `reference` names on the first endpoint that has it.
    pub async fn open(
        worker: &Worker,
        reference: &Reference,
        client_credentials: &dyn CredentialSource,
    ) -> WorkerResult<RegistryReader> {
        let hosts = worker.registry_hosts();
        let endpoints = hosts.endpoints(reference.registry(), reference.resolve_registry());
        let mut failure = WorkerError::Registry {
            reference: reference.whole(),
            reason: "no endpoint to read from".into(),
        };
        for endpoint in &endpoints {
            let host = auth_host(&endpoint.host);
            let found =
                credentials::lookup(client_credentials, hosts.auth_file.as_deref(), host).await;
            let at = endpoint_reference(endpoint, reference);
            let fetcher = match Fetcher::new(endpoint, &at, found) {
                Ok(fetcher) => fetcher,
                Err(error) => {
                    failure = error;
                    continue;
                }
            };
            match fetcher.manifest(&manifest_reference(&at)).await {
                Ok(top) => return Ok(RegistryReader { fetcher, top }),
                Err(error) => failure = error,
            }
        }
        Err(failure)
    }

    /// A manifest of the repository, by digest.
    pub async fn manifest(&self, digest: &str) -> WorkerResult<Vec<u8>> {
        Ok(self.fetcher.manifest(digest).await?.0)
    }

    /// A whole blob (a config).
    pub async fn blob(&self, digest: &str) -> WorkerResult<Vec<u8>> {
        self.fetcher.blob(digest).await
    }

    /// Streams a blob into the content store, under `lease`, unless it is there already.
    pub async fn fetch_into(
        &self,
        worker: &Worker,
        lease: &Lease,
        blob: &OciDescriptor,
    ) -> WorkerResult<()> {
        self.fetcher
            .fetch_layer(worker, &lease.context(), blob)
            .await
    }
}
