//! Builds as many clients send them, for load tests and `bench/load.sh`: each build is its own
//! client session over its own connection; they mix uncached steps, steps several builds share
//! (which the solver must run once), steps cached beforehand, and local contexts sent by file
//! sync.

use std::path::{Path, PathBuf};

use futures::future::join_all;
use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_llb_builder::{image, local, marshal, Copy, State};

use crate::TestEnv;

/// How many distinct shared steps the builds of one run spread over.
const SHARED_GROUPS: usize = 5;
/// How many distinct steps the cached builds spread over (built once before the run).
const WARM_STEPS: usize = 3;

/// The builds of one load run; `marker` keeps its steps apart from every other run's.
pub struct LoadBuilds {
    marker: String,
    context: PathBuf,
}

impl LoadBuilds {
    /// Builds for a run named by `marker` (unique per run); `context` is the directory the
    /// builds that send a local context send.
    pub fn new(marker: &str, context: &Path) -> LoadBuilds {
        LoadBuilds {
            marker: marker.to_string(),
            context: context.to_path_buf(),
        }
    }

    /// Build `index`: odd ones are cached (a warm step), even ones run a step shared with other
    /// builds and one of their own; one in four of those copies the local context in first.
    pub fn request(&self, index: usize) -> BuildRequest {
        let marker = &self.marker;
        let base = image(&TestEnv::get().local_image);
        if !index.is_multiple_of(2) {
            return self.request_for(&warm_step(&base, marker, index), false);
        }
        let with_context = index.is_multiple_of(4);
        let base = if with_context {
            base.file(Copy::new(local("context"), "/", "/ctx/"))
        } else {
            base
        };
        let shared = format!("echo shared-{}-{marker} > /shared", index % SHARED_GROUPS);
        let own = format!("echo own-{index}-{marker} > /own");
        let state = base
            .run(["sh", "-c", &shared])
            .root()
            .run(["sh", "-c", &own])
            .root();
        self.request_for(&state, with_context)
    }

    /// The exec steps builds `0..count` run between them once the warm steps are cached: one
    /// per even build, plus one per shared group an even build uses (with or without its
    /// context, two different steps).
    pub fn steps_executed(count: usize) -> usize {
        let evens: Vec<usize> = (0..count).step_by(2).collect();
        let mut groups: Vec<(usize, bool)> = evens
            .iter()
            .map(|i| (i % SHARED_GROUPS, i.is_multiple_of(4)))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        evens.len() + groups.len()
    }

    /// Runs the warm steps once, so the cached builds find them.
    pub async fn warm_up(&self, addr: &str) -> anyhow::Result<()> {
        for index in (1..2 * WARM_STEPS).step_by(2) {
            run(addr, self.request(index)).await?;
        }
        Ok(())
    }

    fn request_for(&self, state: &State, with_context: bool) -> BuildRequest {
        let mut services = SessionServices::default();
        if with_context {
            services
                .locals
                .insert("context".to_string(), self.context.clone());
        }
        BuildRequest {
            definition: Some(marshal(state).expect("the load graph marshals")),
            services,
            ..Default::default()
        }
    }
}

fn warm_step(base: &State, marker: &str, index: usize) -> State {
    let step = format!("echo warm-{}-{marker} > /warm", (index / 2) % WARM_STEPS);
    base.run(["sh", "-c", &step]).root()
}

/// One build over a connection of its own to the daemon at `addr`.
async fn run(addr: &str, request: BuildRequest) -> anyhow::Result<()> {
    let channel = nodekit::connect::channel(addr).await?;
    build(channel, request, |_| {}).await.map(drop)
}

/// Builds `0..count` all at once; the errors of those that failed, by index.
pub async fn concurrent_builds(
    addr: &str,
    builds: &LoadBuilds,
    count: usize,
) -> Vec<(usize, String)> {
    let runs = (0..count).map(|i| async move { (i, run(addr, builds.request(i)).await) });
    join_all(runs)
        .await
        .into_iter()
        .filter_map(|(i, result)| result.err().map(|e| (i, format!("{e:#}"))))
        .collect()
}

/// Builds `0..count` one after the other, calling `between` after each with its index; the
/// errors of those that failed.
pub async fn sequential_builds(
    addr: &str,
    builds: &LoadBuilds,
    count: usize,
    mut between: impl FnMut(usize),
) -> Vec<(usize, String)> {
    let mut failed = Vec::new();
    for i in 0..count {
        if let Err(e) = run(addr, builds.request(i)).await {
            failed.push((i, format!("{e:#}")));
        }
        between(i);
    }
    failed
}
