use std::collections::HashMap;
use std::path::PathBuf;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, KillRequest, StartRequest, WaitRequest,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spec::{
    build_spec, ExtraMount, MountSource, NetworkMode, ProcessSpec, Sandbox, SpecInput,
};
use super::stdio::Stdio;
use super::stepdir::{EtcFiles, StepDir};
use super::stubs;
use super::user::{needs_lookup, resolve_user, ResolvedUser};
use crate::context::CallContext;
use crate::emulation::{prefix_command, resolve_program, stage_emulator, QEMU_MOUNT};
use crate::error::{StatusExt, WorkerError, WorkerResult};
use crate::hostmount::HostMount;
use crate::snapshots::ActiveSnapshot;
use crate::Worker;

const RUNTIME: &str = "io.containerd.runc.v2";
pub(super) const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const SIGKILL: u32 = 9;

/// A process to run on an active snapshot.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    pub rootfs: ActiveSnapshot,
    pub process: ProcessSpec,
    pub mounts: Vec<ExtraMount>,
    pub network: NetworkMode,
    /// Privileges, hostname and resource limits.
    pub sandbox: Sandbox,
    /// For a foreign platform without a kernel handler: the static qemu to run the command.
    pub emulator: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Output as the process writes it.
#[derive(Clone, Debug)]
pub struct OutputChunk {
    pub stream: OutputStream,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_code: u32,
    /// For a failed process whose filesystem's disk is full: a note saying so, naming it.
    pub disk_full: Option<String>,
}

/// Runs `request` to completion, or until `cancel` fires (then the task is killed). Task,
/// container and step files are removed either way, also when the returned future is dropped.
pub async fn exec(
    worker: &Worker,
    request: ExecRequest,
    output: Option<mpsc::Sender<OutputChunk>>,
    cancel: CancellationToken,
) -> WorkerResult<ExecOutcome> {
    let token = cancel.child_token();
    // Dropping this future cancels the step; the spawned task still cleans up. It is tracked
    // so that a daemon shutting down right after a cancel waits for the task and container
    // to be deleted instead of leaving them (and runc's shim) to the next start.
    let _cancel_on_drop = token.clone().drop_guard();
    let step = worker.clone();
    worker
        .spawn_step(async move { run_step(&step, request, output, token).await })
        .await
        .map_err(|e| WorkerError::Exec(format!("step task failed: {e}")))?
}

async fn run_step(
    worker: &Worker,
    request: ExecRequest,
    output: Option<mpsc::Sender<OutputChunk>>,
    cancel: CancellationToken,
) -> WorkerResult<ExecOutcome> {
    let id = format!("nodekit-{}", crate::random_suffix());
    let etc = EtcFiles {
        hostname: request.sandbox.hostname(),
        extra_hosts: &request.process.extra_hosts,
        dns: &worker.config().dns,
    };
    let dir = StepDir::create(worker.mount_source_root(), &id, &etc)?;
    let mut request = request;
    if let Some(qemu) = request.emulator.clone() {
        let staged = stage_emulator(worker.mount_source_root(), dir.path(), &qemu)
            .map_err(|e| WorkerError::io(format!("staging emulator {}", qemu.display()), e))?;
        request.mounts.push(ExtraMount {
            destination: QEMU_MOUNT.to_string(),
            source: MountSource::Bind {
                source: staged,
                readonly: true,
            },
        });
    }
    let destinations = mount_destinations(&request.mounts);
    let inspected = inspect_rootfs(&dir, &request, &destinations)?;
    let spec = build_spec(&SpecInput {
        container_id: &id,
        namespace: worker.ctx().namespace(),
        process: &inspected.process,
        user: &inspected.user,
        mounts: &request.mounts,
        network: request.network,
        sandbox: &request.sandbox,
        etc_hosts: dir.hosts(),
        etc_resolv_conf: dir.resolv_conf(),
    })?;
    let mut stdio = Stdio::open(dir.path(), output)?;
    let ctx = worker.ctx();
    create_container(worker, ctx, &id, &request.rootfs, &spec).await?;
    let outcome = run_task(worker, ctx, &id, &request.rootfs, &mut stdio, &cancel).await;
    // A container is deleted only once its task is: containerd would otherwise keep a task
    // nobody can name. One left behind is removed at the daemon's next start.
    let removed = if delete_task(worker, ctx, &id).await {
        delete_container(worker, ctx, &id).await
    } else {
        remove_when_back(worker, &id);
        Ok(())
    };
    stdio.finish().await;
    if !inspected.stubs.is_empty() {
        remove_mount_stubs(&dir, &request.rootfs, &inspected.stubs);
    }
    let mut outcome = outcome?;
    removed?;
    if outcome.exit_code != 0 {
        outcome.disk_full = full_disk_note(&request.rootfs);
    }
    Ok(outcome)
}

/// [`crate::disk::full_disk_note`] for the filesystem a step's changes went to.
fn full_disk_note(rootfs: &ActiveSnapshot) -> Option<String> {
    let changes = crate::upperdir::changes_dir(&rootfs.mounts.0, rootfs.parent.is_some())?;
    crate::disk::full_disk_note(&changes)
}

/// Every path runc may have to create in the rootfs for this step.
pub(super) fn mount_destinations(extra: &[ExtraMount]) -> Vec<String> {
    let defaults = ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf"];
    defaults
        .iter()
        .map(|d| d.to_string())
        .chain(extra.iter().map(|m| m.destination.clone()))
        .collect()
}

/// What the step's rootfs told before the step.
pub(super) struct Inspected {
    pub user: ResolvedUser,
    /// Mount points runc will create, to remove afterwards.
    pub stubs: Vec<PathBuf>,
    /// The process to start (under the emulator if there is one).
    pub process: ProcessSpec,
    /// The rootfs's /etc/passwd and /etc/group, for users of later processes.
    pub accounts: Accounts,
}

/// A rootfs's /etc/passwd and /etc/group as read before its container started.
#[derive(Clone, Debug, Default)]
pub(super) struct Accounts {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

impl Accounts {
    /// `spec` resolved against these files (read only when the spec names a user or group).
    pub fn resolve(&self, spec: &str) -> WorkerResult<ResolvedUser> {
        if needs_lookup(spec) {
            resolve_user(spec, self.passwd.as_deref(), self.group.as_deref())
        } else {
            resolve_user(spec, None, None)
        }
    }
}

/// Mounts the rootfs once on the host to resolve the user, note missing mount points and, for
/// an emulated step, find its program.
pub(super) fn inspect_rootfs(
    dir: &StepDir,
    request: &ExecRequest,
    destinations: &[String],
) -> WorkerResult<Inspected> {
    let probe = HostMount::mount(&request.rootfs.mounts.0, &dir.path().join("rootfs"))?;
    let mut process = request.process.clone();
    if request.emulator.is_some() {
        let argv0 = process.args.first().cloned().unwrap_or_default();
        let program = resolve_program(probe.path(), &argv0, &process.env).unwrap_or(argv0);
        process.args = prefix_command(&process.args, &program);
    }
    let read = |file: &str| std::fs::read_to_string(probe.path().join(file)).ok();
    let accounts = Accounts {
        passwd: read("etc/passwd"),
        group: read("etc/group"),
    };
    let user = accounts.resolve(&request.process.user)?;
    let stubs = stubs::missing_mount_points(probe.path(), destinations);
    Ok(Inspected {
        user,
        stubs,
        process,
        accounts,
    })
}

pub(super) fn remove_mount_stubs(dir: &StepDir, rootfs: &ActiveSnapshot, stubs: &[PathBuf]) {
    match HostMount::mount(&rootfs.mounts.0, &dir.path().join("rootfs")) {
        Ok(probe) => stubs::remove_stubs(probe.path(), stubs),
        Err(error) => tracing::warn!(%error, "could not tidy mount stubs"),
    }
}

pub(super) async fn create_container(
    worker: &Worker,
    ctx: &CallContext,
    id: &str,
    rootfs: &ActiveSnapshot,
    spec: &oci_spec::runtime::Spec,
) -> WorkerResult<()> {
    let spec_json = serde_json::to_vec(spec)
        .map_err(|e| WorkerError::Exec(format!("encoding runtime spec: {e}")))?;
    let container = Container {
        id: id.to_string(),
        labels: HashMap::from([(
            crate::leases::OWNER_LABEL.to_string(),
            worker.config().owner.clone(),
        )]),
        runtime: Some(Runtime {
            name: RUNTIME.to_string(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: SPEC_TYPE_URL.to_string(),
            value: spec_json,
        }),
        snapshotter: worker.snapshotter().to_string(),
        snapshot_key: rootfs.key.clone(),
        ..Default::default()
    };
    ContainersClient::new(worker.channel().clone())
        .create(ctx.request(CreateContainerRequest {
            container: Some(container),
        }))
        .await
        .op("container create")?;
    Ok(())
}

pub(super) async fn delete_container(
    worker: &Worker,
    ctx: &CallContext,
    id: &str,
) -> WorkerResult<()> {
    let deleted = ContainersClient::new(worker.channel().clone())
        .delete(ctx.request(DeleteContainerRequest { id: id.to_string() }))
        .await;
    deleted.op_optional("container delete").map(|_| ())
}

async fn run_task(
    worker: &Worker,
    ctx: &CallContext,
    id: &str,
    rootfs: &ActiveSnapshot,
    stdio: &mut Stdio,
    cancel: &CancellationToken,
) -> WorkerResult<ExecOutcome> {
    let mut tasks = TasksClient::new(worker.channel().clone());
    tasks
        .create(ctx.request(CreateTaskRequest {
            container_id: id.to_string(),
            rootfs: rootfs.mounts.0.clone(),
            stdout: stdio.stdout.to_string_lossy().into_owned(),
            stderr: stdio.stderr.to_string_lossy().into_owned(),
            ..Default::default()
        }))
        .await
        .map_err(|status| WorkerError::Exec(status.message().to_string()))?;
    wait_or_cancel(worker, ctx, id, stdio, cancel).await
}

/// SIGKILL to every process of container `id`'s task.
pub(super) fn kill_all(id: &str) -> KillRequest {
    KillRequest {
        container_id: id.to_string(),
        exec_id: String::new(),
        signal: SIGKILL,
        all: true,
    }
}

/// Deletes the task of container `id`; returns whether it is gone. A task still running (its
/// wait failed, or a kill has not taken effect yet) is killed and waited for, up to 5 s.
pub(super) async fn delete_task(worker: &Worker, ctx: &CallContext, id: &str) -> bool {
    let mut tasks = TasksClient::new(worker.channel().clone());
    for attempt in 0..50 {
        let deleted = tasks
            .delete(ctx.request(DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await;
        match deleted {
            Ok(_) => return true,
            Err(status) if status.code() == tonic::Code::NotFound => return true,
            Err(status) => {
                if attempt == 0 {
                    tracing::debug!(container = id, %status, "task not deleted yet; killing it");
                }
                let _ = tasks.kill(ctx.request(kill_all(id))).await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
        }
    }
    tracing::warn!(container = id, "task could not be deleted yet");
    false
}

/// How often a step's leftover task and container are tried again (about half an hour at the
/// longest delay) before they are left to the daemon's next start.
const REMOVAL_ATTEMPTS: u32 = 60;
const REMOVAL_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Removes step container `id` and its task in the background once containerd answers again
/// (it went away while the step ran, so they could not be removed then): a nodekitd that is
/// not restarted leaves nothing running behind. Not tracked: a shutdown does not wait for it.
fn remove_when_back(worker: &Worker, id: &str) {
    let (worker, id) = (worker.clone(), id.to_string());
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_secs(1);
        for _ in 0..REMOVAL_ATTEMPTS {
            tokio::time::sleep(delay).await;
            let ctx = worker.ctx();
            if delete_task(&worker, ctx, &id).await
                && delete_container(&worker, ctx, &id).await.is_ok()
            {
                tracing::info!(container = %id, "removed a step's container once containerd was back");
                return;
            }
            delay = (delay * 2).min(REMOVAL_DELAY_MAX);
        }
        tracing::warn!(container = %id, "step container left for the next start");
    });
}

async fn wait_or_cancel(
    worker: &Worker,
    ctx: &CallContext,
    id: &str,
    stdio: &mut Stdio,
    cancel: &CancellationToken,
) -> WorkerResult<ExecOutcome> {
    let mut tasks = TasksClient::new(worker.channel().clone());
    let started = tasks
        .start(ctx.request(StartRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
        .map_err(|status| WorkerError::Exec(status.message().to_string()));
    stdio.release_writers();
    started?;
    // containerd keeps the exit status until the task is deleted, so waiting after the start
    // still observes an instant exit.
    let mut waiter = TasksClient::new(worker.channel().clone());
    let wait = waiter.wait(ctx.request(WaitRequest {
        container_id: id.to_string(),
        exec_id: String::new(),
    }));
    tokio::pin!(wait);
    tokio::select! {
        waited = &mut wait => {
            let exit_code = waited.op("task wait")?.exit_status;
            Ok(ExecOutcome { exit_code, disk_full: None })
        }
        _ = cancel.cancelled() => {
            tasks
                .kill(ctx.request(kill_all(id)))
                .await
                .op("task kill")?;
            let _ = wait.await;
            Err(WorkerError::Cancelled)
        }
    }
}

/// Kills and deletes the step containers an earlier run of this daemon left (it was killed
/// mid-step, so nothing stopped them); returns how many there were.
pub async fn remove_leftover_containers(worker: &Worker) -> WorkerResult<usize> {
    let filter = format!(
        "labels.\"{}\"=={}",
        crate::leases::OWNER_LABEL,
        worker.config().owner
    );
    let ctx = worker.ctx();
    let containers = ContainersClient::new(worker.channel().clone())
        .list(
            ctx.request(containerd_client::services::v1::ListContainersRequest {
                filters: vec![filter],
            }),
        )
        .await
        .op("container list")?
        .containers;
    let mut tasks = TasksClient::new(worker.channel().clone());
    for container in &containers {
        let id = container.id.clone();
        let _ = tasks.kill(ctx.request(kill_all(&id))).await;
        if delete_task(worker, ctx, &id).await {
            delete_container(worker, ctx, &id).await?;
        }
    }
    Ok(containers.len())
}
