//! ExecOp: prepare writable snapshots for the root and output mounts, run the process in a
//! containerd container, commit every output mount as a new layer on its input.

use std::sync::Arc;

use nodekit_llb::Vertex;
use nodekit_proto::pb::{self, ExecOp, MountType, NetMode};
use tokio::sync::mpsc;

use crate::solver::engine::{SolveContext, Solver};
use crate::solver::error::SolveError;
use crate::solver::result::Ref;
use crate::worker::exec::{ExtraMount, MountSource, NetworkMode, ProcessSpec};
use crate::worker::{ActiveSnapshot, Compression, ExecRequest, OutputChunk, OutputStream};

/// A writable snapshot the step runs on, and the output it becomes (if any).
struct Writable {
    active: ActiveSnapshot,
    input: Ref,
    output: Option<usize>,
}

pub async fn run(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    vertex: &Vertex,
    exec: &ExecOp,
    inputs: Vec<Ref>,
) -> Result<Vec<Ref>, SolveError> {
    let meta = exec.meta.as_ref().ok_or_else(|| {
        SolveError::InvalidDefinition(format!("exec {} has no meta", vertex.digest))
    })?;
    let mut writables = Vec::new();
    let prepared = prepare_mounts(solver, ctx, exec, &inputs, &mut writables).await;
    let result = match prepared {
        Ok((rootfs, mounts)) => execute(solver, ctx, vertex, exec, meta, rootfs, mounts).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => commit_outputs(solver, ctx, writables).await,
        Err(error) => {
            for writable in writables {
                let _ = solver.worker.discard(writable.active).await;
            }
            Err(error)
        }
    }
}

/// Prepares every mount: the root and writable output mounts as active snapshots (collected in
/// `writables`, root first), the rest as read-only views, tmpfs or scratch.
async fn prepare_mounts(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    exec: &ExecOp,
    inputs: &[Ref],
    writables: &mut Vec<Writable>,
) -> Result<(ActiveSnapshot, Vec<ExtraMount>), SolveError> {
    let mut rootfs = None;
    let mut extra = Vec::new();
    for mount in &exec.mounts {
        let input = mount_input(mount, inputs)?;
        match MountType::try_from(mount.mount_type) {
            Ok(MountType::Bind) => {
                if mount.dest == "/" || !mount.readonly {
                    let active = prepare(solver, ctx, &input).await?;
                    let output = usize::try_from(mount.output).ok();
                    if mount.dest == "/" {
                        rootfs = Some(active.clone());
                    } else {
                        extra.push(ExtraMount {
                            destination: mount.dest.clone(),
                            source: MountSource::Snapshot {
                                mounts: active.mounts.clone(),
                                readonly: false,
                            },
                        });
                    }
                    writables.push(Writable {
                        active,
                        input,
                        output,
                    });
                } else {
                    extra.push(read_only_view(solver, ctx, mount, &input).await?);
                }
            }
            Ok(MountType::Tmpfs) => extra.push(ExtraMount {
                destination: mount.dest.clone(),
                source: MountSource::Tmpfs {
                    size_bytes: mount
                        .tmpfs_opt
                        .as_ref()
                        .map(|t| t.size)
                        .filter(|s| *s > 0)
                        .map(|s| s as u64),
                },
            }),
            Ok(other) => {
                return Err(SolveError::Unsupported(format!(
                    "mount {} of type {:?} is not supported by nodekitd yet",
                    mount.dest, other
                )))
            }
            Err(_) => {
                return Err(SolveError::InvalidDefinition(format!(
                    "mount {} has an unknown type",
                    mount.dest
                )))
            }
        }
    }
    let rootfs =
        rootfs.ok_or_else(|| SolveError::InvalidDefinition("exec has no root mount".into()))?;
    Ok((rootfs, extra))
}

fn mount_input(mount: &pb::Mount, inputs: &[Ref]) -> Result<Ref, SolveError> {
    if mount.input < 0 {
        return Ok(Ref::default()); // scratch
    }
    inputs.get(mount.input as usize).cloned().ok_or_else(|| {
        SolveError::InvalidDefinition(format!(
            "mount {} refers to missing input {}",
            mount.dest, mount.input
        ))
    })
}

async fn prepare(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    input: &Ref,
) -> Result<ActiveSnapshot, SolveError> {
    solver
        .worker
        .prepare(&ctx.lease, input.chain_id().as_deref())
        .await
        .map_err(|e| SolveError::worker("preparing a snapshot", e))
}

async fn read_only_view(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    mount: &pb::Mount,
    input: &Ref,
) -> Result<ExtraMount, SolveError> {
    let key = format!(
        "nodekit-view-{}-{}",
        ctx.job.id,
        crate::worker::random_suffix()
    );
    let mounts = solver
        .worker
        .snapshots()
        .view(&ctx.lease.context(), &key, input.chain_id().as_deref())
        .await
        .map_err(|e| SolveError::worker(format!("mounting {}", mount.dest), e))?;
    Ok(ExtraMount {
        destination: mount.dest.clone(),
        source: MountSource::Snapshot {
            mounts,
            readonly: true,
        },
    })
}

async fn execute(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    vertex: &Vertex,
    exec: &ExecOp,
    meta: &pb::Meta,
    rootfs: ActiveSnapshot,
    mounts: Vec<ExtraMount>,
) -> Result<(), SolveError> {
    let network = match NetMode::try_from(exec.network) {
        Ok(NetMode::None) => NetworkMode::None,
        _ => NetworkMode::Host,
    };
    let request = ExecRequest {
        rootfs,
        process: ProcessSpec {
            args: meta.args.clone(),
            env: meta.env.clone(),
            cwd: meta.cwd.clone(),
            user: meta.user.clone(),
        },
        mounts,
        network,
    };
    let (sender, receiver) = mpsc::channel(64);
    let logs = tokio::spawn(forward_logs(ctx.clone(), vertex.digest.clone(), receiver));
    let outcome = solver
        .worker
        .exec(request, Some(sender), ctx.job.cancel.clone())
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
        })
    }
}

async fn forward_logs(
    ctx: Arc<SolveContext>,
    vertex: String,
    mut output: mpsc::Receiver<OutputChunk>,
) {
    while let Some(chunk) = output.recv().await {
        let stream = match chunk.stream {
            OutputStream::Stdout => 1,
            OutputStream::Stderr => 2,
        };
        ctx.job.progress.log(&vertex, stream, chunk.data);
    }
}

/// Commits each output mount as a layer on its input (intermediate layers stay uncompressed:
/// they never leave the node unless exported); other writable mounts are discarded.
async fn commit_outputs(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
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
            let _ = solver.worker.discard(writable.active).await;
            continue;
        };
        let layer = solver
            .worker
            .commit_layer(&ctx.lease, writable.active, Compression::Uncompressed)
            .await
            .map_err(|e| SolveError::worker("committing the result", e))?;
        outputs[index] = writable.input.with_layer(layer);
    }
    Ok(outputs)
}
