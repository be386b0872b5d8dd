//! Exec ops: the node a [`Run`] builds, and the states it produces.

use std::sync::Arc;

use nodekit_proto::pb;

use crate::error::BuildError;
use crate::mount::{MountKind, Secret, Ssh};
use crate::node::{push_unique, Node, NodeKind, Output};
use crate::run::Run;
use crate::state::{Meta, State};

/// The mount point of the root filesystem.
const ROOT: &str = "/";

/// An exec op.
#[derive(Debug)]
pub(crate) struct ExecNode {
    /// The process settings (args, env, cwd, user, network, …) and the state's platform.
    pub process: Arc<Meta>,
    pub proxy: Option<pb::ProxyEnv>,
    pub valid_exit_codes: Option<Vec<i32>>,
    /// Sorted by destination, as BuildKit's client sorts them.
    pub mounts: Vec<MountSpec>,
    pub secrets: Vec<Secret>,
    pub ssh: Vec<Ssh>,
    pub cdi_devices: Vec<pb::CdiDevice>,
    pub error: Option<BuildError>,
}

/// One mount of an exec op, root included.
#[derive(Debug)]
pub(crate) struct MountSpec {
    pub dest: String,
    pub source: Option<Output>,
    pub selector: String,
    pub readonly: bool,
    pub kind: MountKind,
    /// The op output holding the mount's content after the run, if it is one.
    pub output: Option<i64>,
}

impl ExecNode {
    /// The outputs the op mounts, each once, in mount order.
    pub fn deps(&self) -> Vec<&Output> {
        let mut deps = Vec::new();
        for source in self.mounts.iter().filter_map(|m| m.source.as_ref()) {
            push_unique(&mut deps, source);
        }
        deps
    }
}

/// The result of a run: the root filesystem after it and its mounts.
#[derive(Debug, Clone)]
pub struct ExecState {
    root: State,
    node: Arc<Node>,
}

impl ExecState {
    pub(crate) fn build(run: Run) -> ExecState {
        let mounts = mount_specs(&run);
        let exec = ExecNode {
            process: run.process.meta.clone(),
            proxy: run.proxy,
            valid_exit_codes: run.valid_exit_codes,
            mounts,
            secrets: run.secrets,
            ssh: run.ssh,
            cdi_devices: run.cdi_devices,
            error: run.error,
        };
        let node = Arc::new(Node {
            kind: NodeKind::Exec(Box::new(exec)),
            opts: run.opts,
        });
        let root = if run.readonly_rootfs {
            on_output(&run.origin, run.process.output.clone())
        } else {
            let index = root_output(&node);
            on_output(
                &run.origin,
                Some(Output {
                    node: node.clone(),
                    index,
                }),
            )
        };
        ExecState { root, node }
    }

    /// The root filesystem after the run (with the settings of the state `run` was called on).
    pub fn root(&self) -> State {
        self.root.clone()
    }

    /// The content of the mount at `dest` after the run, as a fresh state (BuildKit's
    /// `GetMount`): a read-only mount gives its source, a writable one the op's output. None
    /// for no such mount, or one without a result (tmpfs, cache, no-output).
    pub fn get_mount(&self, dest: &str) -> Option<State> {
        let NodeKind::Exec(exec) = &self.node.kind else {
            return None;
        };
        let spec = exec.mounts.iter().find(|m| m.dest == dest)?;
        if spec.readonly {
            return Some(State::new(spec.source.clone()));
        }
        let index = spec.output?;
        Some(State::new(Some(Output {
            node: self.node.clone(),
            index,
        })))
    }
}

/// `state`'s settings on `output` (None: scratch).
fn on_output(state: &State, output: Option<Output>) -> State {
    match output {
        Some(output) => state.with_output(output),
        None => State {
            output: None,
            meta: state.meta.clone(),
        },
    }
}

fn root_output(node: &Node) -> i64 {
    match &node.kind {
        NodeKind::Exec(exec) => exec
            .mounts
            .iter()
            .find(|m| m.dest == ROOT)
            .and_then(|m| m.output),
        _ => None,
    }
    .unwrap_or(0)
}

/// The root mount and the run's mounts, sorted by destination, with their output numbers.
fn mount_specs(run: &Run) -> Vec<MountSpec> {
    let root = MountSpec {
        dest: ROOT.to_string(),
        source: run.process.output.clone(),
        selector: String::new(),
        readonly: run.readonly_rootfs,
        kind: MountKind::Bind,
        output: None,
    };
    let mut specs = vec![(root, !run.readonly_rootfs)];
    for (dest, mount) in &run.mounts {
        let spec = MountSpec {
            dest: dest.clone(),
            source: mount.source.as_ref().and_then(|s| s.output.clone()),
            selector: mount.selector.clone(),
            readonly: mount.readonly,
            kind: mount.kind.clone(),
            output: None,
        };
        specs.push((spec, mount.has_output()));
    }
    specs.sort_by(|(a, _), (b, _)| a.dest.cmp(&b.dest));
    let mut next = 0;
    let mut numbered = Vec::with_capacity(specs.len());
    for (mut spec, has_output) in specs {
        if has_output {
            spec.output = Some(next);
            next += 1;
        }
        numbered.push(spec);
    }
    numbered
}
