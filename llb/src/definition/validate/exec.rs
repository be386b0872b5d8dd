//! Exec op checks and output numbering.

use nodekit_proto::pb;
use pb::MountType;

use super::check_input_index;
use crate::definition::error::{LlbError, OpAt};

/// The root filesystem's mount point.
const ROOT: &str = "/";

pub(super) fn validate(at: OpAt, exec: &pb::ExecOp, inputs: usize) -> Result<usize, LlbError> {
    let meta = exec
        .meta
        .as_ref()
        .ok_or_else(|| at.error("exec.meta", "is missing: an exec op needs a command to run"))?;
    if meta.args.is_empty() {
        return Err(at.error(
            "exec.meta.args",
            "is empty: an exec op needs a command to run",
        ));
    }
    check_enum::<pb::NetMode>(at, "exec.network", exec.network, "network mode")?;
    check_enum::<pb::SecurityMode>(at, "exec.security", exec.security, "security mode")?;
    for (i, mount) in exec.mounts.iter().enumerate() {
        validate_mount(at, i, mount, inputs)?;
    }
    if !exec.mounts.iter().any(|m| m.dest == ROOT) {
        return Err(at.error(
            "exec.mounts",
            "has no root mount (dest \"/\"): an exec op needs a root filesystem",
        ));
    }
    Ok(exec_output_mounts(exec).len())
}

/// Which mounts of an exec op produce its outputs: output `i` of the op is the mount at
/// `exec_output_mounts(exec)[i]`. As in BuildKit, outputs are numbered by mount order, counting
/// bind mounts with `output != -1` and cache mounts with `output != -1` over an input; the
/// `output` values themselves only say "yes" or "no".
pub fn exec_output_mounts(exec: &pb::ExecOp) -> Vec<usize> {
    exec.mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| produces_output(m))
        .map(|(i, _)| i)
        .collect()
}

fn produces_output(mount: &pb::Mount) -> bool {
    if mount.output == -1 {
        return false;
    }
    match MountType::try_from(mount.mount_type) {
        Ok(MountType::Bind) => true,
        Ok(MountType::Cache) => mount.input != -1,
        _ => false,
    }
}

fn validate_mount(at: OpAt, i: usize, mount: &pb::Mount, inputs: usize) -> Result<(), LlbError> {
    let field = format!("exec.mounts[{i}]");
    check_input_index(at, &format!("{field}.input"), mount.input, inputs, true)?;
    if mount.output < -1 {
        return Err(at.error(
            format!("{field}.output"),
            format!("is {}: it must be -1 (no output) or >= 0", mount.output),
        ));
    }
    let kind = check_enum::<MountType>(
        at,
        &format!("{field}.mountType"),
        mount.mount_type,
        "mount type",
    )?;
    if mount.dest == ROOT {
        check_root_mount(at, &field, mount, kind)?;
    }
    check_mount_options(at, &field, mount, kind)
}

fn check_root_mount(
    at: OpAt,
    field: &str,
    mount: &pb::Mount,
    kind: MountType,
) -> Result<(), LlbError> {
    if kind != MountType::Bind {
        return Err(at.error(
            format!("{field}.mountType"),
            format!(
                "is {} but the root mount (dest \"/\") must be a bind mount",
                kind.as_str_name()
            ),
        ));
    }
    if mount.input == -1 && mount.output == -1 {
        return Err(at.error(
            field,
            "is the root mount but has neither an input nor an output, so there is no root filesystem",
        ));
    }
    Ok(())
}

fn check_mount_options(
    at: OpAt,
    field: &str,
    mount: &pb::Mount,
    kind: MountType,
) -> Result<(), LlbError> {
    let missing = match kind {
        MountType::Cache => mount.cache_opt.is_none().then_some("cacheOpt"),
        MountType::Secret => mount.secret_opt.is_none().then_some("secretOpt"),
        MountType::Ssh => mount.ssh_opt.is_none().then_some("SSHOpt"),
        MountType::Bind | MountType::Tmpfs => None,
    };
    if let Some(option) = missing {
        return Err(at.error(
            format!("{field}.{option}"),
            format!("is missing: a {} mount needs it", kind.as_str_name()),
        ));
    }
    if let Some(cache) = &mount.cache_opt {
        let sharing = format!("{field}.cacheOpt.sharing");
        check_enum::<pb::CacheSharingOpt>(at, &sharing, cache.sharing, "cache sharing mode")?;
    }
    Ok(())
}

/// Checks that an enum field holds a known value and returns it.
fn check_enum<E: TryFrom<i32>>(
    at: OpAt,
    field: &str,
    value: i32,
    what: &str,
) -> Result<E, LlbError> {
    E::try_from(value).map_err(|_| at.error(field, format!("is {value}, not a known {what}")))
}
