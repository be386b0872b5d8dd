//! The interactive containers of one gateway build (LLBBridge.NewContainer), by the id the
//! frontend gave them. Each holds its mounts (snapshots, caches, secrets) until it is released,
//! at the latest when its build ends.

use std::collections::HashMap;
use std::sync::Arc;

use nodekit_proto::moby::buildkit::v1::frontend::NewContainerRequest;
use nodekit_proto::pb::{self, NetMode};
use parking_lot::Mutex;
use tonic::Status;

use super::GatewayBuild;
use crate::api::errors::to_status;
use crate::oci::Platform;
use crate::solver::{prepare_container_mounts, ContainerMounts, Ref};
use crate::worker::exec::{
    ExecRequest, ExtraMount, InteractiveContainer, NetworkMode, ProcessSpec, Sandbox,
};

/// A container and what its mounts hold.
pub struct GatewayContainer {
    pub inner: Arc<InteractiveContainer>,
    mounts: tokio::sync::Mutex<Option<ContainerMounts>>,
}

impl GatewayContainer {
    /// Stops every process and lets go of task, container and mounts.
    pub async fn release(&self) {
        self.inner.release().await;
        if let Some(mounts) = self.mounts.lock().await.take() {
            mounts.release().await;
        }
    }
}

#[derive(Default)]
pub struct Containers {
    by_id: Mutex<HashMap<String, Arc<GatewayContainer>>>,
}

impl Containers {
    pub fn get(&self, id: &str) -> Result<Arc<GatewayContainer>, Status> {
        self.by_id
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))
    }

    /// Releases container `id`; an unknown id is an error.
    pub async fn release(&self, id: &str) -> Result<(), Status> {
        let container = self.by_id.lock().remove(id);
        let container =
            container.ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        container.release().await;
        Ok(())
    }

    /// Releases every container (the build is ending).
    pub async fn release_all(&self) {
        let all: Vec<_> = self.by_id.lock().drain().map(|(_, c)| c).collect();
        for container in all {
            container.release().await;
        }
    }

    fn exists(&self, id: &str) -> Status {
        Status::already_exists(format!("Container {id} already exists"))
    }

    /// Creates the container `request` asks for in `build`.
    pub async fn create(
        &self,
        build: &GatewayBuild,
        request: NewContainerRequest,
    ) -> Result<(), Status> {
        self.create_with(build, request, Vec::new()).await
    }

    /// [`Containers::create`] with host mounts of nodekitd's own beyond those asked for.
    pub async fn create_with(
        &self,
        build: &GatewayBuild,
        request: NewContainerRequest,
        own_mounts: Vec<ExtraMount>,
    ) -> Result<(), Status> {
        let id = request.container_id.clone();
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "NewContainer without a ContainerID",
            ));
        }
        if self.by_id.lock().contains_key(&id) {
            return Err(self.exists(&id));
        }
        let settings = settings(&request)?;
        let (mounts, inputs) = container_mounts(build, &request.mounts)?;
        let held = prepare_container_mounts(&build.solver, &build.ctx, mounts, &inputs)
            .await
            .map_err(to_status)?;
        let exec = ExecRequest {
            rootfs: held.rootfs.clone(),
            process: ProcessSpec {
                extra_hosts: settings.extra_hosts,
                ..Default::default()
            },
            mounts: held.extra.iter().cloned().chain(own_mounts).collect(),
            network: settings.network,
            sandbox: settings.sandbox,
            emulator: None,
        };
        let inner = match InteractiveContainer::new(&build.solver.worker, exec) {
            Ok(inner) => inner,
            Err(error) => {
                held.release().await;
                return Err(Status::internal(format!(
                    "creating container {id}: {error}"
                )));
            }
        };
        let container = Arc::new(GatewayContainer {
            inner,
            mounts: tokio::sync::Mutex::new(Some(held)),
        });
        let duplicate = {
            let mut by_id = self.by_id.lock();
            if by_id.contains_key(&id) {
                true
            } else {
                by_id.insert(id.clone(), container.clone());
                false
            }
        };
        if duplicate {
            container.release().await;
            return Err(self.exists(&id));
        }
        Ok(())
    }
}

/// A container's network, hostname and extra hosts.
struct Settings {
    network: NetworkMode,
    sandbox: Sandbox,
    extra_hosts: Vec<(String, String)>,
}

/// The container's settings; what nodekitd does not implement is refused by name.
fn settings(request: &NewContainerRequest) -> Result<Settings, Status> {
    if let Some(platform) = &request.platform {
        let asked = Platform::new(
            &platform.os,
            &platform.architecture,
            Some(platform.variant.as_str()).filter(|v| !v.is_empty()),
        );
        if asked != Platform::native() {
            return Err(Status::unimplemented(format!(
                "NewContainer platform {asked}: containers of a foreign platform are not supported by nodekitd"
            )));
        }
    }
    if request
        .constraints
        .as_ref()
        .is_some_and(|c| !c.filter.is_empty())
    {
        return Err(Status::unimplemented(
            "NewContainer constraints: worker constraints are not supported by nodekitd",
        ));
    }
    let network = match NetMode::try_from(request.network) {
        Ok(NetMode::None) => NetworkMode::None,
        Ok(NetMode::Unset | NetMode::Host) => NetworkMode::Host,
        _ => {
            return Err(Status::invalid_argument(format!(
                "NewContainer network mode {} is not known",
                request.network
            )))
        }
    };
    Ok(Settings {
        network,
        sandbox: Sandbox {
            hostname: Some(request.hostname.clone()).filter(|h| !h.is_empty()),
            ..Default::default()
        },
        extra_hosts: request
            .extra_hosts
            .iter()
            .map(|h| (h.host.clone(), h.ip.clone()))
            .collect(),
    })
}

/// The request's mounts as an exec op's, their inputs the results their `resultID`s name.
fn container_mounts(
    build: &GatewayBuild,
    mounts: &[pb::Mount],
) -> Result<(Vec<pb::Mount>, Vec<Ref>), Status> {
    let mut inputs = Vec::new();
    let mut converted = Vec::new();
    for mount in mounts {
        let input = match build.result(&mount.result_id).map_err(to_status)? {
            Some(result) => {
                inputs.push(result);
                inputs.len() as i64 - 1
            }
            None => -1,
        };
        // Only these fields count, as upstream copies them.
        converted.push(pb::Mount {
            input,
            output: -1,
            dest: mount.dest.clone(),
            selector: mount.selector.clone(),
            readonly: mount.readonly,
            mount_type: mount.mount_type,
            cache_opt: mount.cache_opt.clone(),
            secret_opt: mount.secret_opt.clone(),
            ssh_opt: mount.ssh_opt.clone(),
            ..Default::default()
        });
    }
    Ok((converted, inputs))
}
