//! Per-kind field checks of one op, given only the op itself. Each check returns how many
//! outputs the op has, which is what other ops' input indexes are checked against.
//!
//! Rules follow BuildKit (`solver/llbsolver/ops/opsutils/validate.go` and each op's runtime
//! checks in `solver/llbsolver/ops/*.go`), moved to load time so a bad definition fails before
//! anything runs.

mod exec;
mod file;
mod source;

use nodekit_proto::pb;
use pb::op::Op as OpKind;

use super::error::{LlbError, OpAt};

pub use exec::exec_output_mounts;

/// Validates the fields of a non-terminal op and returns its number of outputs.
pub(crate) fn output_count(at: OpAt, op: &pb::Op) -> Result<usize, LlbError> {
    let inputs = op.inputs.len();
    match &op.op {
        None => Err(at.error(
            "op",
            "is not set: only the last (terminal) op of a definition may have no op",
        )),
        Some(OpKind::Exec(exec)) => exec::validate(at, exec, inputs),
        Some(OpKind::Source(source)) => source::validate(at, source).map(|()| 1),
        Some(OpKind::File(file)) => file::validate(at, file, inputs),
        Some(OpKind::Merge(merge)) => validate_merge(at, merge, inputs).map(|()| 1),
        Some(OpKind::Diff(diff)) => validate_diff(at, diff, inputs).map(|()| 1),
        Some(OpKind::Build(build)) => validate_build(at, build, inputs).map(|()| 1),
        Some(OpKind::Passthrough(pass)) => validate_passthrough(at, pass, inputs),
    }
}

/// Checks that `value` indexes one of the op's `inputs` (or is -1, "scratch", if allowed).
pub(super) fn check_input_index(
    at: OpAt,
    field: &str,
    value: i64,
    inputs: usize,
    scratch_ok: bool,
) -> Result<(), LlbError> {
    let in_range = usize::try_from(value).is_ok_and(|v| v < inputs);
    if in_range || (scratch_ok && value == -1) {
        return Ok(());
    }
    let scratch = if scratch_ok { " or -1 (scratch)" } else { "" };
    Err(at.error(
        field,
        format!(
            "is {value}: it must index the op's inputs ({}){scratch}",
            index_range(0, inputs)
        ),
    ))
}

/// "none", "0" or "0 to 3" for the indexes `start..end`.
pub(super) fn index_range(start: usize, end: usize) -> String {
    match end.saturating_sub(start) {
        0 => "none".to_string(),
        1 => start.to_string(),
        _ => format!("{start} to {}", end - 1),
    }
}

fn validate_merge(at: OpAt, merge: &pb::MergeOp, inputs: usize) -> Result<(), LlbError> {
    for (i, input) in merge.inputs.iter().enumerate() {
        check_input_index(
            at,
            &format!("merge.inputs[{i}]"),
            input.input,
            inputs,
            false,
        )?;
    }
    Ok(())
}

fn validate_diff(at: OpAt, diff: &pb::DiffOp, inputs: usize) -> Result<(), LlbError> {
    let lower = diff.lower.as_ref().map(|l| l.input);
    let upper = diff.upper.as_ref().map(|u| u.input);
    for (field, side) in [("diff.lower", lower), ("diff.upper", upper)] {
        let value = side.ok_or_else(|| {
            at.error(
                field,
                "is missing: a diff op needs both sides (-1 for scratch)",
            )
        })?;
        check_input_index(at, &format!("{field}.input"), value, inputs, true)?;
    }
    Ok(())
}

fn validate_build(at: OpAt, build: &pb::BuildOp, inputs: usize) -> Result<(), LlbError> {
    if build.builder != -1 {
        return Err(at.error(
            "build.builder",
            format!("is {}: only the LLB builder (-1) exists", build.builder),
        ));
    }
    for (name, input) in &build.inputs {
        check_input_index(
            at,
            &format!("build.inputs[{name:?}]"),
            input.input,
            inputs,
            false,
        )?;
    }
    Ok(())
}

fn validate_passthrough(
    at: OpAt,
    pass: &pb::PassthroughOp,
    inputs: usize,
) -> Result<usize, LlbError> {
    if pass.id.is_empty() {
        return Err(at.error("passthrough.id", "is empty"));
    }
    if pass.outputs.is_empty() {
        return Err(at.error(
            "passthrough.outputs",
            "is empty: it needs at least one output",
        ));
    }
    for (i, &input) in pass.outputs.iter().enumerate() {
        check_input_index(
            at,
            &format!("passthrough.outputs[{i}]"),
            input,
            inputs,
            false,
        )?;
    }
    Ok(pass.outputs.len())
}
