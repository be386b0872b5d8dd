//! The Dockerfile conformance suite (issue 4): every directory under `tests/dockerfile/cases/`
//! is one Dockerfile built through one in-process nodekitd's `dockerfile.v0` frontend on the real
//! test containerd, then checked by running the image with ctr and by reading its config.
//! Expected values are upstream BuildKit's behaviour and wording. The case format is described
//! in `cases/README.md`.
//!
//! `NODEKIT_DF_CASES=a,b` runs only the cases whose names contain `a` or `b`;
//! `NODEKIT_DF_JOBS=N` sets how many cases build at once (default 4);
//! `NODEKIT_DF_RUN_SKIPPED=1` also runs the cases marked `skip`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod case;
mod checks;
mod http;
mod image;
mod stage;

use std::collections::BTreeMap;
use std::path::Path;

use futures::StreamExt;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::checks::{run_case, Outcome};

/// The image every case's Dockerfile names as its base (offline, in the host store).
const BASE_IMAGE: &str = "nodekit.test/busybox:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfile_conformance() {
    let env = TestEnv::get();
    assert_eq!(
        env.local_image, BASE_IMAGE,
        "the cases' Dockerfiles name {BASE_IMAGE} as their base image"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dockerfile/cases");
    let cases = case::discover(&root)
        .unwrap_or_else(|problems| panic!("malformed conformance cases:\n{}", problems.join("\n")));
    let filter: Vec<String> = std::env::var("NODEKIT_DF_CASES")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    assert!(!cases.is_empty(), "no conformance case selected");
    let jobs = std::env::var("NODEKIT_DF_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);

    let allowed = ["network.host".to_string(), "security.insecure".to_string()];
    let daemon = TestDaemon::start_with("dockerfile-conformance", |config| {
        config.entitlements =
            nodekitd::solver::entitlements::Entitlements::parse(&allowed).unwrap();
    })
    .await;
    let vars = Placeholders::for_run(&env.registry_image);
    let mut outcomes: Vec<Outcome> = futures::stream::iter(cases.iter())
        .map(|case| {
            let daemon = &daemon;
            let vars = &vars;
            async move {
                let outcome = run_case(daemon, case, vars).await;
                eprintln!(
                    "{} {} ({:.1}s)",
                    match (&outcome.skipped, outcome.failures.is_empty()) {
                        (Some(_), _) => "skip",
                        (None, true) => "ok  ",
                        (None, false) => "FAIL",
                    },
                    outcome.name,
                    outcome.elapsed.as_secs_f64()
                );
                outcome
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    daemon.stop().await;

    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    let report = report(&outcomes);
    if outcomes.iter().any(|o| !o.failures.is_empty()) {
        panic!("{report}");
    }
    eprintln!("{report}");
}

/// One report listing every failed case with expected and actual, then the totals.
fn report(outcomes: &[Outcome]) -> String {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.failures.is_empty()).collect();
    let skipped: Vec<&Outcome> = outcomes.iter().filter(|o| o.skipped.is_some()).collect();
    let passed = outcomes.len() - failed.len() - skipped.len();
    let mut out = String::new();
    for o in &failed {
        out.push_str(&format!("--- FAIL {}: {}\n", o.name, o.description));
        for f in &o.failures {
            out.push_str(&format!("    - {f}\n"));
        }
    }
    for o in &skipped {
        out.push_str(&format!(
            "--- SKIP {}: {}\n",
            o.name,
            o.skipped.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "dockerfile conformance: {} cases, {passed} passed, {} failed, {} skipped",
        outcomes.len(),
        failed.len(),
        skipped.len()
    ));
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|o| o.name.as_str()).collect();
        out.push_str(&format!("\nfailed: {}", names.join(" ")));
    }
    out
}

/// `{{NAME}}` values substituted into options, secrets, commands and every expected value.
#[derive(Clone, Debug)]
pub struct Placeholders(BTreeMap<String, String>);

impl Placeholders {
    /// The values of this run; `registry_image` is the image only the test registry has (its
    /// port is the test environment's setting).
    fn for_run(registry_image: &str) -> Placeholders {
        let arch = host_arch();
        let netns = std::fs::read_link("/proc/self/ns/net")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut vars = Placeholders(BTreeMap::new());
        vars.set("HOST_ARCH", arch);
        vars.set("HOST_PLATFORM", &format!("linux/{arch}"));
        vars.set("HOST_NETNS", &netns);
        vars.set("RUN_ID", &format!("{:016x}", rand::random::<u64>()));
        vars.set("BASE", BASE_IMAGE);
        vars.set("REGISTRY_IMAGE", registry_image);
        vars
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(format!("{{{{{name}}}}}"), value.to_string());
    }

    pub fn apply(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (k, v) in &self.0 {
            if out.contains(k.as_str()) {
                out = out.replace(k.as_str(), v);
            }
        }
        out
    }

    pub fn apply_json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.apply(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.apply_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.apply(k), self.apply_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// `NODEKIT_DF_RUN_SKIPPED=1` runs the cases marked `skip` too (to see whether they pass yet).
pub fn run_skipped() -> bool {
    std::env::var("NODEKIT_DF_RUN_SKIPPED").is_ok_and(|v| v == "1")
}

/// The host's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
