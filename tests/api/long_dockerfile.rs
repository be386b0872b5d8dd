//! A Dockerfile of 100,000 lines (long runs of ENV and ARG, and a long chain of stages) builds
//! through the daemon, its last values in the image: conversion costs about as much as the file
//! is long. Its cost grew with the square of the file before (a 100,000-line file of ENV lines
//! ran for more than 10 minutes on buildkitd too); the figures are bench/'s (dockerfile-bench,
//! compare.sh longenv).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nodekit::build::BuildRequest;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::helpers::{context_locals, image_output, run_build};

const ENVS: usize = 40_000;
const ARGS: usize = 30_000;
const STAGES: usize = 30_000;

/// The ENV and ARG lines first, then the chain of stages: every stage inherits 40,000
/// variables and 30,000 ARGs from the one before (when each stage copied them, this file took
/// 24 GB).
fn long_dockerfile(base: &str) -> String {
    let mut text = format!("FROM {base} AS s0\n");
    for i in 0..ENVS {
        let _ = writeln!(text, "ENV V{i}=env-{i}");
    }
    for i in 0..ARGS {
        let _ = writeln!(text, "ARG A{i}=arg-{i}");
    }
    for i in 0..STAGES {
        let _ = writeln!(text, "FROM s{i} AS s{}", i + 1);
    }
    let last_arg = ARGS - 1;
    let _ = writeln!(text, "LABEL last=\"$V{}-$A{last_arg}\"", ENVS - 1);
    text
}

#[tokio::test]
async fn a_dockerfile_of_100_000_lines_builds() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("long-dockerfile").await;
    let context = tempfile::tempdir().unwrap();
    let dockerfile = long_dockerfile(&env.local_image);
    assert!(dockerfile.lines().count() > 100_000);
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    let image = "nodekit.test/api-long-dockerfile:1";
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::new(),
        services: context_locals(context.path()),
        exporters: image_output(image),
        ..Default::default()
    };
    let response = run_build(&daemon, request).await.0.unwrap();
    let digest = &response["containerimage.config.digest"];
    let config = ctr(env, &["content", "get", digest]);
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
    let last = format!("env-{}-arg-{}", ENVS - 1, ARGS - 1);
    assert_eq!(config["config"]["Labels"]["last"], serde_json::json!(last));
    let env_entries = config["config"]["Env"].as_array().unwrap();
    assert!(env_entries.len() > ENVS, "{} entries", env_entries.len());
    let _ = ctr(env, &["images", "rm", image]);
}
