//! Running a step's process in a containerd container over an active snapshot (runc through
//! containerd Tasks), streaming its output, and always cleaning up task, container and files.

mod interactive;
mod procio;
mod run;
mod spec;
mod stdio;
mod stepdir;
mod stubs;
mod user;

pub use interactive::{InteractiveContainer, Process, ProcessControl, ProcessRequest};
pub use procio::{StdinWriter, StreamSet};
pub use run::{
    exec, remove_leftover_containers, ExecOutcome, ExecRequest, OutputChunk, OutputStream,
};
pub use spec::{
    all_capabilities, build_spec, env_with_path, ExtraMount, MountSource, NetworkMode, ProcessSpec,
    Rlimit, Sandbox, DEFAULT_PATH,
};
pub use stepdir::Dns;
pub use user::{resolve_user, ResolvedUser};
