//! Typed instructions built from [`crate::ast::Node`]s (upstream
//! `frontend/dockerfile/instructions`).

mod convert;
mod copy;
mod csv;
mod expand;
mod flags;
mod from;
mod healthcheck;
mod kind;
mod mount;
mod mount_fields;
mod run;
mod types;

pub(crate) use convert::{convert, Parsed};
pub use from::FromInstruction;
pub use mount::{Mount, MountSpec, MountType, ShareMode};
pub use run::{parse_device, Device, NetworkMode, SecurityMode};
pub use types::{
    AddInstruction, ArgDef, CommandLine, CopyInstruction, HealthcheckInstruction, Instruction,
    InstructionKind, KeyValue, OnbuildInstruction, RunInstruction, SourceContent,
};

/// Go `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
