//! FileOp: a chain of actions (mkdir, mkfile, rm, symlink, copy), each on a writable snapshot
//! mounted on the host. An action's input is an op input or an earlier action's result, which
//! it continues in place; outputs are committed as layers on their base.

use std::path::PathBuf;

use nodekit_fileop::{ActionRoots, PasswdResolver};
use nodekit_proto::pb::{FileAction, FileOp};

use crate::solver::error::SolveError;
use crate::solver::ops::OpContext;
use crate::solver::result::Ref;
use crate::worker::ActiveSnapshot;

/// An action's result: a writable snapshot on `base`, not yet committed.
struct Pending {
    active: ActiveSnapshot,
    base: Ref,
}

pub async fn run(
    op: &OpContext<'_>,
    file: &FileOp,
    inputs: Vec<Ref>,
) -> Result<Vec<Ref>, SolveError> {
    let mut pending: Vec<Option<Pending>> = Vec::new();
    let outcome = run_actions(op, file, &inputs, &mut pending).await;
    let outputs = match outcome {
        Ok(()) => commit_outputs(op, file, &mut pending).await,
        Err(error) => Err(error),
    };
    for left in pending.into_iter().flatten() {
        let _ = op.solver.worker.discard(left.active).await;
    }
    outputs
}

async fn run_actions(
    op: &OpContext<'_>,
    file: &FileOp,
    inputs: &[Ref],
    pending: &mut Vec<Option<Pending>>,
) -> Result<(), SolveError> {
    for (index, action) in file.actions.iter().enumerate() {
        let dest = take_base(op, action, inputs, pending, index).await?;
        let result = apply(op, action, inputs, pending, &dest).await;
        pending.push(Some(dest));
        result?;
    }
    Ok(())
}

/// The writable snapshot action `index` works on: its input's, continued or newly prepared.
async fn take_base(
    op: &OpContext<'_>,
    action: &FileAction,
    inputs: &[Ref],
    pending: &mut [Option<Pending>],
    index: usize,
) -> Result<Pending, SolveError> {
    let base = match input_of(action.input, inputs.len(), index)? {
        Input::Scratch => Ref::default(),
        Input::Op(i) => inputs[i].clone(),
        Input::Action(a) => {
            return pending[a].take().ok_or_else(|| {
                SolveError::Unsupported(format!(
                    "file action {index}: the result of action {a} is used twice"
                ))
            })
        }
    };
    let active = op.prepare(&base).await?;
    Ok(Pending { active, base })
}

/// Mounts what the action needs and performs it.
async fn apply(
    op: &OpContext<'_>,
    action: &FileAction,
    inputs: &[Ref],
    pending: &[Option<Pending>],
    dest: &Pending,
) -> Result<(), SolveError> {
    let dest_mount = op.mount_active(&dest.active)?;
    let source_mount = match input_of(action.secondary_input, inputs.len(), pending.len())? {
        Input::Scratch => None,
        Input::Op(i) => Some(op.view(&inputs[i]).await?),
        Input::Action(a) => {
            let source = pending[a].as_ref().ok_or_else(|| {
                SolveError::Unsupported(format!(
                    "file action {}: the result of action {a} is used twice",
                    pending.len()
                ))
            })?;
            Some(op.mount_active(&source.active)?)
        }
    };
    let dest_path = dest_mount.path().to_path_buf();
    let source_path: Option<PathBuf> = source_mount.as_ref().map(|m| m.path().to_path_buf());
    let action = action.clone();
    let copied_from = match &action.action {
        Some(nodekit_proto::pb::file_action::Action::Copy(copy)) => {
            Some(nodekit_llb::pathutil::join(&["/", &copy.src]))
        }
        _ => None,
    };
    // Dropping this future (a cancelled build) sets the flag: the blocking thread stops.
    let cancelled = CancelOnDrop::default();
    let limits = nodekit_fileop::Limits {
        unpack_bytes: op.solver.limits.unpack_bytes,
        cancelled: Some(cancelled.0.clone()),
    };
    let done = tokio::task::spawn_blocking(move || {
        let users = PasswdResolver::new(&dest_path);
        let roots = ActionRoots {
            dest: &dest_path,
            source: source_path.as_deref(),
        };
        nodekit_fileop::apply_limited(&action, roots, &users, &limits)
    })
    .await;
    // Unmounting an overlay syncs the filesystem under it: not on an async worker thread.
    let _ = tokio::task::spawn_blocking(move || drop((dest_mount, source_mount))).await;
    match done {
        Ok(Ok(())) => Ok(()),
        // A copy source that is not there: BuildKit's wording, naming the source.
        Ok(Err(error)) if is_missing_source(&error, copied_from.as_deref()) => {
            Err(SolveError::FileOp(format!(
                "failed to calculate checksum: {:?}: not found",
                copied_from.unwrap_or_default()
            )))
        }
        Ok(Err(error)) if error.is_extract_limit() => Err(SolveError::FileOp(format!(
            "{error} ([limits] maxUnpackBytes)"
        ))),
        Ok(Err(error)) => Err(SolveError::FileOp(error.to_string())),
        Err(error) => Err(SolveError::Other(format!("file action failed: {error}"))),
    }
}

/// Commits each action that names an output, in output order.
async fn commit_outputs(
    op: &OpContext<'_>,
    file: &FileOp,
    pending: &mut [Option<Pending>],
) -> Result<Vec<Ref>, SolveError> {
    let mut outputs: Vec<(i64, Ref)> = Vec::new();
    for (index, action) in file.actions.iter().enumerate() {
        if action.output < 0 {
            continue;
        }
        let done = pending[index].take().ok_or_else(|| {
            SolveError::Unsupported(format!(
                "file action {index}: its result is both an output and another action's input"
            ))
        })?;
        outputs.push((action.output, op.commit(done.active, &done.base).await?));
    }
    outputs.sort_by_key(|(index, _)| *index);
    Ok(outputs.into_iter().map(|(_, result)| result).collect())
}

enum Input {
    Scratch,
    Op(usize),
    Action(usize),
}

/// Decodes an action's input index: -1 scratch, op inputs first, then earlier actions.
fn input_of(index: i64, op_inputs: usize, action: usize) -> Result<Input, SolveError> {
    if index < 0 {
        return Ok(Input::Scratch);
    }
    let index = index as usize;
    if index < op_inputs {
        return Ok(Input::Op(index));
    }
    let earlier = index - op_inputs;
    if earlier < action {
        return Ok(Input::Action(earlier));
    }
    Err(SolveError::InvalidDefinition(format!(
        "file action {action} refers to input {index}, which is neither an op input nor an earlier action"
    )))
}

/// Whether a copy failed because its source is not there (not its destination).
fn is_missing_source(error: &nodekit_fileop::FileOpError, source: Option<&str>) -> bool {
    source.is_some_and(|src| error.is_not_found() && error.to_string().contains(src))
}

/// A flag set when dropped: what a blocking file action looks at to stop when its build is
/// cancelled (the future awaiting it is dropped; the thread is not).
#[derive(Default)]
struct CancelOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
