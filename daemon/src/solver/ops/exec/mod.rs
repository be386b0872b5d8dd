//! ExecOp: prepare the root and every mount, run the process in a containerd container, then
//! commit every output mount as a new layer on its input.

mod container;
mod mounts;
pub(crate) mod secrets;
pub(crate) mod ssh;

pub use container::{container_secret_env, prepare_container_mounts, ContainerMounts};

use std::path::PathBuf;

use nodekit_proto::pb::{self, ExecOp, NetMode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::emulation::Emulator;
use crate::worker::exec::{NetworkMode, ProcessSpec, Rlimit, Sandbox};
use crate::worker::{ActiveSnapshot, ExecRequest, OutputChunk, OutputStream};

use mounts::{MountPlan, Writable};

pub async fn run(
    op: &OpContext<'_>,
    exec: &ExecOp,
    inputs: Vec<Ref>,
) -> Result<Vec<Ref>, SolveError> {
    let meta = exec.meta.as_ref().ok_or_else(|| {
        SolveError::InvalidDefinition(format!("exec {} has no meta", op.vertex.digest))
    })?;
    // Before anything is prepared: a platform this node cannot run fails at once.
    let emulator = emulator_for(op)?;
    let mut plan = MountPlan::default();
    let result = match plan.prepare(op, exec, &inputs).await {
        Ok(rootfs) => execute(op, exec, meta, rootfs, &mut plan, emulator).await,
        Err(error) => Err(error),
    };
    // Host mounts, cache turns and secret files go before anything is committed.
    let writables = plan.release();
    match result {
        Ok(()) => commit_outputs(op, writables).await,
        Err(error) => {
            for writable in writables {
                let _ = op.solver.worker.discard(writable.active).await;
            }
            Err(error)
        }
    }
}

/// The step's privileges, hostname and limits (its entitlements were checked with the graph).
fn sandbox(exec: &ExecOp, meta: &pb::Meta) -> Sandbox {
    Sandbox {
        privileged: exec.security == pb::SecurityMode::Insecure as i32,
        hostname: (!meta.hostname.is_empty()).then(|| meta.hostname.clone()),
        rlimits: meta
            .ulimit
            .iter()
            .map(|u| Rlimit {
                name: u.name.clone(),
                soft: u64::try_from(u.soft).unwrap_or(u64::MAX),
                hard: u64::try_from(u.hard).unwrap_or(u64::MAX),
            })
            .collect(),
    }
}

async fn execute(
    op: &OpContext<'_>,
    exec: &ExecOp,
    meta: &pb::Meta,
    rootfs: ActiveSnapshot,
    plan: &mut MountPlan,
    emulator: Option<PathBuf>,
) -> Result<(), SolveError> {
    let network = match NetMode::try_from(exec.network) {
        Ok(NetMode::None) => NetworkMode::None,
        _ => NetworkMode::Host,
    };
    let mut env = meta.env.clone();
    env.extend(proxy_environment(
        meta,
        op.solver.worker.config().proxy.as_ref(),
    ));
    env.extend(secrets::environment(op, exec).await?);
    let request = ExecRequest {
        rootfs,
        process: ProcessSpec {
            args: meta.args.clone(),
            env,
            cwd: meta.cwd.clone(),
            user: meta.user.clone(),
            extra_hosts: meta
                .extra_hosts
                .iter()
                .map(|h| (h.host.clone(), h.ip.clone()))
                .collect(),
        },
        mounts: std::mem::take(&mut plan.extra),
        network,
        sandbox: sandbox(exec, meta),
        emulator,
    };
    let (sender, receiver) = mpsc::channel(64);
    let logs = tokio::spawn(forward_logs(
        op.ctx.job.clone(),
        op.vertex.digest.clone(),
        receiver,
    ));
    // Cancelled by dropping: the step may be shared with other builds, so no one build's
    // cancellation may kill it while another still waits for it.
    let outcome = op
        .solver
        .worker
        .exec(request, Some(sender), CancellationToken::new())
        .await;
    let _ = logs.await;
    let outcome = outcome.map_err(|e| SolveError::worker("running the process", e))?;
    let valid = if meta.valid_exit_codes.is_empty() {
        outcome.exit_code == 0
    } else {
        meta.valid_exit_codes.contains(&(outcome.exit_code as i32))
    };
    if valid {
        Ok(())
    } else {
        Err(SolveError::ExitCode {
            command: meta.args.join(" "),
            code: outcome.exit_code,
            note: outcome
                .disk_full
                .map(|note| format!(" ({note})"))
                .unwrap_or_default(),
        })
    }
}

/// The static qemu a step of a foreign platform needs, if the kernel cannot run it itself.
fn emulator_for(op: &OpContext<'_>) -> Result<Option<PathBuf>, SolveError> {
    let platform = super::op_platform(&op.vertex.op);
    let emulation = &op.solver.worker.config().emulation;
    match emulation.emulator_for(&platform) {
        Ok(Some(Emulator::Bundled { qemu })) => Ok(Some(qemu)),
        Ok(Some(Emulator::Kernel { handler })) => {
            tracing::debug!(%platform, handler, "foreign step through binfmt_misc");
            Ok(None)
        }
        Ok(None) => Ok(None),
        Err(error) => Err(SolveError::Other(error.to_string())),
    }
}

/// The proxy settings a step gets in both letter cases: its own (proxy build args), else the
/// daemon's. Never part of the op, so never of its cache key or the image.
fn proxy_environment(meta: &pb::Meta, daemon: Option<&pb::ProxyEnv>) -> Vec<String> {
    let Some(proxy) = meta.proxy_env.as_ref().or(daemon) else {
        return Vec::new();
    };
    let set = |name: &str| meta.env.iter().any(|e| e.split('=').next() == Some(name));
    crate::config::proxy::named(proxy)
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .flat_map(|(name, value)| [(name.to_string(), value), (name.to_lowercase(), value)])
        .filter(|(name, _)| !set(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

async fn forward_logs(
    job: std::sync::Arc<crate::solver::Job>,
    vertex: String,
    mut output: mpsc::Receiver<OutputChunk>,
) {
    while let Some(chunk) = output.recv().await {
        let stream = match chunk.stream {
            OutputStream::Stdout => 1,
            OutputStream::Stderr => 2,
        };
        job.progress.log(&vertex, stream, chunk.data);
    }
}

/// Commits each output mount as a layer on its input; other writable mounts are discarded.
async fn commit_outputs(
    op: &OpContext<'_>,
    writables: Vec<Writable>,
) -> Result<Vec<Ref>, SolveError> {
    let count = writables
        .iter()
        .filter_map(|w| w.output)
        .map(|o| o + 1)
        .max()
        .unwrap_or(0);
    let mut outputs = vec![Ref::default(); count];
    for writable in writables {
        let Some(index) = writable.output else {
            let _ = op.solver.worker.discard(writable.active).await;
            continue;
        };
        outputs[index] = op.commit(writable.active, &writable.input).await?;
    }
    Ok(outputs)
}
