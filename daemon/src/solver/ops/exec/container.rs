//! The mounts of a gateway container (LLBBridge.NewContainer), prepared as an ExecOp's are: the
//! container's mounts are an exec op's whose inputs are results the frontend solved before.

use std::sync::Arc;

use nodekit_llb::Vertex;
use nodekit_proto::pb::{self, ExecOp};

use super::mounts::MountPlan;
use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::solver::{SolveContext, Solver};
use crate::worker::exec::ExtraMount;
use crate::worker::{ActiveSnapshot, Lease};

/// Everything a gateway container's mounts hold until [`ContainerMounts::release`].
pub struct ContainerMounts {
    pub rootfs: ActiveSnapshot,
    pub extra: Vec<ExtraMount>,
    plan: MountPlan,
    lease: Option<Arc<Lease>>,
    solver: Solver,
}

/// Prepares `mounts` (each `input` an index into `inputs`); the one at "/" is the root.
pub async fn prepare_container_mounts(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    mounts: Vec<pb::Mount>,
    inputs: &[Ref],
) -> Result<ContainerMounts, SolveError> {
    let exec = ExecOp {
        mounts,
        ..Default::default()
    };
    let vertex = container_vertex(&exec);
    let op = OpContext::new(solver, ctx, &vertex);
    let mut plan = MountPlan::default();
    let prepared = plan.prepare(&op, &exec, inputs).await;
    let lease = op.into_lease();
    match prepared {
        Ok(rootfs) => Ok(ContainerMounts {
            rootfs,
            extra: std::mem::take(&mut plan.extra),
            plan,
            lease,
            solver: solver.clone(),
        }),
        Err(error) => {
            discard(solver, plan).await;
            drop(lease);
            Err(error)
        }
    }
}

impl ContainerMounts {
    /// Unmounts and discards everything (writable snapshots are never committed).
    pub async fn release(self) {
        discard(&self.solver, self.plan).await;
        drop(self.lease);
    }
}

async fn discard(solver: &Solver, plan: MountPlan) {
    for writable in plan.release() {
        let _ = solver.worker.discard(writable.active).await;
    }
}

/// `NAME=value` for each secret a container's process takes as an environment variable.
pub async fn container_secret_env(
    solver: &Solver,
    ctx: &Arc<SolveContext>,
    secretenv: Vec<pb::SecretEnv>,
) -> Result<Vec<String>, SolveError> {
    let exec = ExecOp {
        secretenv,
        ..Default::default()
    };
    let vertex = container_vertex(&exec);
    let op = OpContext::new(solver, ctx, &vertex);
    super::secrets::environment(&op, &exec).await
}

/// A vertex standing for the container (the op context names the vertex it works for).
fn container_vertex(exec: &ExecOp) -> Vertex {
    Vertex {
        digest: "gateway-container".to_string(),
        position: 0,
        op: pb::Op {
            op: Some(pb::op::Op::Exec(exec.clone())),
            ..Default::default()
        },
        inputs: Vec::new(),
        output_count: 0,
        metadata: None,
        platform: None,
        name: "gateway container".to_string(),
    }
}
