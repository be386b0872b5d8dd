//! File op checks.
//!
//! A file op's actions index one space: `0..inputs` are the op's inputs, `inputs + j` is the
//! result of action `j` (BuildKit's `FileOpSolver`). -1 is an empty (scratch) directory. Actions
//! declaring `output >= 0` are the op's outputs, numbered by that value, which must be unique
//! and dense from 0.

use nodekit_proto::pb;
use pb::file_action::Action;
use pb::user_opt::User;

use super::index_range;
use crate::definition::error::{LlbError, OpAt};

pub(super) fn validate(at: OpAt, file: &pb::FileOp, inputs: usize) -> Result<usize, LlbError> {
    if file.actions.is_empty() {
        return Err(at.error(
            "file.actions",
            "is empty: a file op needs at least one action",
        ));
    }
    for (i, action) in file.actions.iter().enumerate() {
        validate_action(at, i, action, inputs, file.actions.len())?;
    }
    check_outputs(at, &file.actions)
}

fn validate_action(
    at: OpAt,
    i: usize,
    action: &pb::FileAction,
    inputs: usize,
    actions: usize,
) -> Result<(), LlbError> {
    let field = format!("file.actions[{i}]");
    let kind = action.action.as_ref().ok_or_else(|| {
        at.error(
            &field,
            "has no action: expected copy, mkfile, mkdir, rm or symlink",
        )
    })?;
    let space = Space {
        inputs,
        actions,
        current: i,
    };
    space.check(at, &format!("{field}.input"), action.input, true)?;
    space.check(
        at,
        &format!("{field}.secondaryInput"),
        action.secondary_input,
        true,
    )?;
    for (who, owner) in owner_refs(kind) {
        space.check(
            at,
            &format!("{field}.{}.owner.{who}.byName.input", action_name(kind)),
            owner,
            false,
        )?;
    }
    Ok(())
}

/// The index space visible to action `current`.
struct Space {
    inputs: usize,
    actions: usize,
    current: usize,
}

impl Space {
    fn check(&self, at: OpAt, field: &str, value: i64, scratch_ok: bool) -> Result<(), LlbError> {
        let earlier = self.inputs + self.current;
        match usize::try_from(value) {
            Ok(v) if v < earlier => Ok(()),
            Ok(v) if v < self.inputs + self.actions => Err(at.error(
                field,
                format!(
                    "is {v}: it refers to action {}, which is not earlier than action {}; {}",
                    v - self.inputs,
                    self.current,
                    self.allowed(scratch_ok)
                ),
            )),
            _ if scratch_ok && value == -1 => Ok(()),
            _ => Err(at.error(field, format!("is {value}: {}", self.allowed(scratch_ok)))),
        }
    }

    fn allowed(&self, scratch_ok: bool) -> String {
        let earlier = self.inputs + self.current;
        format!(
            "an action may use op inputs ({}), earlier actions' results ({}){}",
            index_range(0, self.inputs),
            index_range(self.inputs, earlier),
            if scratch_ok { " or -1 (scratch)" } else { "" }
        )
    }
}

/// (user|group, input) for each owner given by name in the action.
fn owner_refs(kind: &Action) -> Vec<(&'static str, i64)> {
    let owner = match kind {
        Action::Copy(c) => c.owner.as_ref(),
        Action::Mkfile(m) => m.owner.as_ref(),
        Action::Mkdir(m) => m.owner.as_ref(),
        Action::Symlink(s) => s.owner.as_ref(),
        Action::Rm(_) => None,
    };
    let Some(owner) = owner else {
        return Vec::new();
    };
    [
        ("user", owner.user.as_ref()),
        ("group", owner.group.as_ref()),
    ]
    .into_iter()
    .filter_map(|(who, opt)| match opt.and_then(|o| o.user.as_ref()) {
        Some(User::ByName(named)) => Some((who, named.input)),
        _ => None,
    })
    .collect()
}

pub(crate) fn action_name(kind: &Action) -> &'static str {
    match kind {
        Action::Copy(_) => "copy",
        Action::Mkfile(_) => "mkfile",
        Action::Mkdir(_) => "mkdir",
        Action::Rm(_) => "rm",
        Action::Symlink(_) => "symlink",
    }
}

/// Checks the declared outputs (unique, dense from 0, at least one) and returns their number.
fn check_outputs(at: OpAt, actions: &[pb::FileAction]) -> Result<usize, LlbError> {
    let mut owner_of: Vec<Option<usize>> = vec![None; actions.len()];
    for (i, action) in actions.iter().enumerate() {
        let field = format!("file.actions[{i}].output");
        let slot = match action.output {
            -1 => continue,
            value => usize::try_from(value)
                .ok()
                .filter(|&v| v < actions.len())
                .ok_or_else(|| at.error(&field, format!("is {value}: it must be -1 (no output) or an output number below the number of actions ({})", actions.len())))?,
        };
        if let Some(first) = owner_of[slot] {
            return Err(at.error(
                field,
                format!("is {slot}, already declared by action {first}"),
            ));
        }
        owner_of[slot] = Some(i);
    }
    let count = owner_of.iter().take_while(|o| o.is_some()).count();
    if let Some(gap) = owner_of.iter().skip(count).position(Option::is_some) {
        let declared = count + gap;
        return Err(at.error(
            format!("file.actions[{}].output", owner_of[declared].unwrap_or_default()),
            format!("is {declared} but no action declares output {count}: outputs must be numbered 0, 1, 2, …"),
        ));
    }
    if count == 0 {
        return Err(at.error(
            "file.actions",
            "declare no output: at least one action needs output >= 0",
        ));
    }
    Ok(count)
}
