//! Interactive containers (the frontend gateway's containers): prepared once, then processes
//! started in them on demand. As BuildKit does, the first process is the container's task (its
//! init) and later ones are exec'd into that task while it runs. Spec, user resolution, mount
//! stubs and clean-up are the step machinery's ([`super::run`]).

use std::path::PathBuf;
use std::sync::Arc;

use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CloseIoRequest, CreateTaskRequest, DeleteProcessRequest, ExecProcessRequest, GetRequest,
    KillRequest, ResizePtyRequest, StartRequest, WaitRequest,
};
use tokio::sync::mpsc;

use super::procio::{ProcessIo, StdinWriter, StreamSet};
use super::run::{
    create_container, delete_container, delete_task, inspect_rootfs, kill_all, mount_destinations,
    remove_mount_stubs, Accounts, ExecRequest, OutputChunk,
};
use super::spec::{build_spec, ProcessSpec, Sandbox, SpecInput};
use super::stdio::Stdio;
use super::stepdir::{EtcFiles, StepDir};
use super::user::ResolvedUser;
use crate::error::{StatusExt, WorkerError, WorkerResult};
use crate::Worker;

const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// A container waiting for, or running, its processes.
pub struct InteractiveContainer {
    worker: Worker,
    id: String,
    /// Root, mounts, network and sandbox (its process is each start's own).
    template: ExecRequest,
    dir: StepDir,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The containerd container exists (its task may have ended).
    created: bool,
    /// Mount points runc created in the rootfs, removed at release.
    stubs: Vec<PathBuf>,
    accounts: Accounts,
    processes: u64,
    /// The first process made a privileged container.
    privileged: bool,
}

/// A process to start in the container.
#[derive(Clone, Debug, Default)]
pub struct ProcessRequest {
    pub process: ProcessSpec,
    pub streams: StreamSet,
    /// Security mode INSECURE (its entitlement checked by the caller): the first process makes
    /// a privileged container (as `RUN --security=insecure`); a later one gets every
    /// capability within the container its first made.
    pub privileged: bool,
}

/// A started process: its control, its stdin (if it has one) and its output.
pub struct Process {
    pub control: ProcessControl,
    pub stdin: Option<StdinWriter>,
    output: Stdio,
}

/// What can be done to a running process, from any task.
#[derive(Clone)]
pub struct ProcessControl {
    worker: Worker,
    container_id: String,
    /// Empty for the container's init process.
    exec_id: String,
}

impl InteractiveContainer {
    /// A container over `template`'s rootfs and mounts; nothing runs until [`start`](Self::start).
    pub fn new(worker: &Worker, template: ExecRequest) -> WorkerResult<Arc<InteractiveContainer>> {
        if template.emulator.is_some() {
            return Err(WorkerError::Exec(
                "an interactive container of a foreign platform is not supported".into(),
            ));
        }
        let id = format!("nodekit-ctr-{}", crate::random_suffix());
        let etc = EtcFiles {
            hostname: template.sandbox.hostname(),
            extra_hosts: &template.process.extra_hosts,
            dns: &worker.config().dns,
        };
        let dir = StepDir::create(worker.mount_source_root(), &id, &etc)?;
        Ok(Arc::new(InteractiveContainer {
            worker: worker.clone(),
            id,
            template,
            dir,
            state: tokio::sync::Mutex::new(State::default()),
        }))
    }

    /// Starts a process, its output going to `sink`. The start runs to its end even when the
    /// caller goes away meanwhile (a cancelled build): cut short, containerd could still make
    /// the container or task asked for after [`release`](Self::release) looked for it.
    pub async fn start(
        self: &Arc<Self>,
        request: ProcessRequest,
        sink: mpsc::Sender<OutputChunk>,
    ) -> WorkerResult<Process> {
        let this = self.clone();
        tokio::spawn(async move { this.start_to_the_end(request, sink).await })
            .await
            .map_err(|e| WorkerError::Exec(format!("starting a process: {e}")))?
    }

    async fn start_to_the_end(
        &self,
        request: ProcessRequest,
        sink: mpsc::Sender<OutputChunk>,
    ) -> WorkerResult<Process> {
        let mut state = self.state.lock().await;
        state.processes += 1;
        let name = format!("p{}", state.processes);
        let io = ProcessIo::open(self.dir.path(), &name, request.streams, sink)?;
        let exec_id = if state.created {
            self.exec(&state, &name, &request, &io).await?;
            name
        } else {
            self.start_init(&mut state, &request, &io).await?;
            String::new()
        };
        let mut output = io.output;
        output.release_writers();
        Ok(Process {
            control: ProcessControl {
                worker: self.worker.clone(),
                container_id: self.id.clone(),
                exec_id,
            },
            stdin: io.stdin,
            output,
        })
    }

    async fn start_init(
        &self,
        state: &mut State,
        request: &ProcessRequest,
        io: &ProcessIo,
    ) -> WorkerResult<()> {
        let mut exec = self.template.clone();
        exec.process = request.process.clone();
        let inspected = inspect_rootfs(&self.dir, &exec, &mount_destinations(&exec.mounts))?;
        state.stubs = inspected.stubs;
        state.accounts = inspected.accounts;
        state.privileged = request.privileged;
        let spec = self.spec(
            &inspected.process,
            &inspected.user,
            request,
            state.privileged,
        )?;
        let ctx = self.worker.ctx();
        create_container(&self.worker, ctx, &self.id, &exec.rootfs, &spec).await?;
        state.created = true;
        let mut tasks = TasksClient::new(self.worker.channel().clone());
        tasks
            .create(ctx.request(CreateTaskRequest {
                container_id: self.id.clone(),
                rootfs: exec.rootfs.mounts.0.clone(),
                stdin: io.stdin_path.clone(),
                stdout: io.stdout_path.clone(),
                stderr: io.stderr_path.clone(),
                terminal: request.streams.tty,
                ..Default::default()
            }))
            .await
            .map_err(|status| WorkerError::Exec(status.message().to_string()))?;
        tasks
            .start(ctx.request(StartRequest {
                container_id: self.id.clone(),
                exec_id: String::new(),
            }))
            .await
            .map_err(|status| WorkerError::Exec(status.message().to_string()))?;
        Ok(())
    }

    async fn exec(
        &self,
        state: &State,
        exec_id: &str,
        request: &ProcessRequest,
        io: &ProcessIo,
    ) -> WorkerResult<()> {
        let user = self.accounts(state).await.resolve(&request.process.user)?;
        let privileged = state.privileged || request.privileged;
        let spec = self.spec(&request.process, &user, request, privileged)?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| WorkerError::Exec("the runtime spec has no process".into()))?;
        let value = serde_json::to_vec(process)
            .map_err(|e| WorkerError::Exec(format!("encoding process spec: {e}")))?;
        let ctx = self.worker.ctx();
        let mut tasks = TasksClient::new(self.worker.channel().clone());
        tasks
            .exec(ctx.request(ExecProcessRequest {
                container_id: self.id.clone(),
                stdin: io.stdin_path.clone(),
                stdout: io.stdout_path.clone(),
                stderr: io.stderr_path.clone(),
                terminal: request.streams.tty,
                spec: Some(prost_types::Any {
                    type_url: PROCESS_TYPE_URL.to_string(),
                    value,
                }),
                exec_id: exec_id.to_string(),
            }))
            .await
            .map_err(|status| {
                WorkerError::Exec(format!(
                    "exec into the container (has its first process exited?): {}",
                    status.message()
                ))
            })?;
        tasks
            .start(ctx.request(StartRequest {
                container_id: self.id.clone(),
                exec_id: exec_id.to_string(),
            }))
            .await
            .map_err(|status| WorkerError::Exec(status.message().to_string()))?;
        Ok(())
    }

    /// The running container's own /etc/passwd and /etc/group (its processes may have added
    /// users), through its init's /proc root; else those read before it started.
    async fn accounts(&self, state: &State) -> Accounts {
        let got = TasksClient::new(self.worker.channel().clone())
            .get(self.worker.ctx().request(GetRequest {
                container_id: self.id.clone(),
                exec_id: String::new(),
            }))
            .await;
        let pid = got.ok().and_then(|r| r.into_inner().process).map(|p| p.pid);
        let Some(pid) = pid.filter(|pid| *pid > 0) else {
            return state.accounts.clone();
        };
        let read =
            |file: &str| std::fs::read_to_string(format!("/proc/{pid}/root/etc/{file}")).ok();
        match (read("passwd"), read("group")) {
            (None, None) => state.accounts.clone(),
            (passwd, group) => Accounts { passwd, group },
        }
    }

    fn spec(
        &self,
        process: &ProcessSpec,
        user: &ResolvedUser,
        request: &ProcessRequest,
        privileged: bool,
    ) -> WorkerResult<oci_spec::runtime::Spec> {
        let tty = request.streams.tty;
        let sandbox = Sandbox {
            privileged: self.template.sandbox.privileged || privileged,
            ..self.template.sandbox.clone()
        };
        let mut spec = build_spec(&SpecInput {
            container_id: &self.id,
            namespace: self.worker.ctx().namespace(),
            process,
            user,
            mounts: &self.template.mounts,
            network: self.template.network,
            sandbox: &sandbox,
            etc_hosts: self.dir.hosts(),
            etc_resolv_conf: self.dir.resolv_conf(),
        })?;
        if let Some(mut process) = spec.process().clone() {
            process.set_terminal(Some(tty));
            spec.set_process(Some(process));
        }
        Ok(spec)
    }

    /// Kills every process, deletes task and container, and tidies the mount points runc made.
    pub async fn release(&self) {
        let state = self.state.lock().await;
        if !state.created {
            return;
        }
        let ctx = self.worker.ctx();
        let mut tasks = TasksClient::new(self.worker.channel().clone());
        let _ = tasks.kill(ctx.request(kill_all(&self.id))).await;
        if delete_task(&self.worker, ctx, &self.id).await {
            if let Err(error) = delete_container(&self.worker, ctx, &self.id).await {
                tracing::warn!(container = self.id, %error, "could not delete container");
            }
        }
        if !state.stubs.is_empty() {
            remove_mount_stubs(&self.dir, &self.template.rootfs, &state.stubs);
        }
    }
}

impl Process {
    /// Waits for the output to be read to its end; forgets an exec'd process in containerd.
    pub async fn finish(self) {
        self.output.finish().await;
        self.control.forget().await;
    }
}

impl ProcessControl {
    /// The process's exit status, once it has exited.
    pub async fn wait(&self) -> WorkerResult<u32> {
        let waited = TasksClient::new(self.worker.channel().clone())
            .wait(self.worker.ctx().request(WaitRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
            }))
            .await;
        Ok(waited.op("task wait")?.exit_status)
    }

    pub async fn signal(&self, signal: u32) -> WorkerResult<()> {
        TasksClient::new(self.worker.channel().clone())
            .kill(self.worker.ctx().request(KillRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                signal,
                all: false,
            }))
            .await
            .op("task kill")?;
        Ok(())
    }

    pub async fn resize(&self, rows: u32, cols: u32) -> WorkerResult<()> {
        TasksClient::new(self.worker.channel().clone())
            .resize_pty(self.worker.ctx().request(ResizePtyRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                width: cols,
                height: rows,
            }))
            .await
            .op("resize tty")?;
        Ok(())
    }

    /// Closes the process's stdin on the shim's side (after nodekit closed its FIFO end).
    pub async fn close_stdin(&self) -> WorkerResult<()> {
        TasksClient::new(self.worker.channel().clone())
            .close_io(self.worker.ctx().request(CloseIoRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
                stdin: true,
            }))
            .await
            .op_optional("close stdin")?;
        Ok(())
    }

    async fn forget(&self) {
        if self.exec_id.is_empty() {
            return; // the init process goes with the task
        }
        let _ = TasksClient::new(self.worker.channel().clone())
            .delete_process(self.worker.ctx().request(DeleteProcessRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
            }))
            .await;
    }
}
