//! Building one case through the daemon and comparing what came out with what `case.toml`
//! expects. Every mismatch is collected (not just the first), with expected and actual.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::TestDaemon;
use serde_json::Value;

use crate::case::{Case, Run};
use crate::http::{serve_dir, HttpServer};
use crate::image;
use crate::stage::{stage, Staged};
use crate::Placeholders;

/// What became of one case.
pub struct Outcome {
    pub name: String,
    pub description: String,
    pub elapsed: Duration,
    pub skipped: Option<String>,
    pub failures: Vec<String>,
}

/// A finished build: the exporter response or the error, and everything the steps printed.
struct Built {
    result: Result<BTreeMap<String, String>, String>,
    logs: String,
    /// The build's warnings (lint findings), one `short` text per line.
    warnings: String,
}

pub async fn run_case(daemon: &TestDaemon, case: &Case, base: &Placeholders) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        name: case.name.clone(),
        description: case.spec.description.clone(),
        elapsed: Duration::ZERO,
        skipped: case.spec.skip.clone().filter(|_| !crate::run_skipped()),
        failures: Vec::new(),
    };
    if outcome.skipped.is_none() {
        outcome.failures = check_case(daemon, case, base).await;
    }
    outcome.elapsed = started.elapsed();
    outcome
}

async fn check_case(daemon: &TestDaemon, case: &Case, base: &Placeholders) -> Vec<String> {
    let staged = match stage(case, base) {
        Ok(s) => s,
        Err(e) => return vec![format!("staging the case: {e:#}")],
    };
    let mut vars = base.clone();
    vars.set("IMAGE", &case.image());
    let _server: Option<HttpServer> = if case.spec.http.serve {
        match serve_dir(staged.context.clone()).await {
            Ok(server) => {
                vars.set("HTTP", &server.url);
                Some(server)
            }
            Err(e) => return vec![format!("starting the HTTP server: {e}")],
        }
    } else {
        None
    };

    for pre in &case.spec.prebuild {
        let built = run_build(
            daemon,
            case,
            &staged,
            &pre.dockerfile,
            &pre.opts,
            &pre.image,
            &vars,
        )
        .await;
        if let Err(e) = built.result {
            return vec![format!(
                "prebuild {} ({}) failed: {}{}",
                pre.dockerfile,
                pre.image,
                clip(&e, 1500),
                log_tail(&built.logs)
            )];
        }
    }

    let spec = &case.spec;
    let built = run_build(
        daemon,
        case,
        &staged,
        &spec.build.dockerfile,
        &spec.build.opts,
        &case.image(),
        &vars,
    )
    .await;

    let mut failures = Vec::new();
    if let Some(expect) = &spec.error {
        match &built.result {
            Ok(_) => failures.push(format!(
                "expected the build to fail ({}), but it succeeded",
                describe_error(case, expect, &vars)
            )),
            Err(actual) => {
                if let Some(line) = expect.line {
                    let file = expect.file.as_deref().unwrap_or(&spec.build.dockerfile);
                    let prefix = format!("{file}:{line}:");
                    if !actual.contains(&prefix) {
                        failures.push(format!(
                            "error lacks the location {prefix:?}\n      actual: {}",
                            clip(actual, 1500)
                        ));
                    }
                }
                for want in &expect.contains {
                    let want = vars.apply(want);
                    if !actual.contains(&want) {
                        failures.push(format!(
                            "error lacks {want:?}\n      actual: {}",
                            clip(actual, 1500)
                        ));
                    }
                }
            }
        }
        check_logs(case, &built.logs, &vars, &mut failures);
        check_warnings(case, &built.warnings, &vars, &mut failures);
        return failures;
    }

    let response = match &built.result {
        Ok(r) => r,
        Err(e) => {
            return vec![format!(
                "unexpected failure: {}{}",
                clip(e, 1500),
                log_tail(&built.logs)
            )]
        }
    };
    check_logs(case, &built.logs, &vars, &mut failures);
    check_warnings(case, &built.warnings, &vars, &mut failures);
    if case.checks_config() {
        match image::config(response).await {
            Ok(config) => check_config(case, &config, &vars, &mut failures),
            Err(e) => failures.push(format!("reading the image config: {e:#}")),
        }
    }
    for run in &spec.run {
        check_run(case, run, &vars, &mut failures).await;
    }
    failures
}

fn describe_error(case: &Case, expect: &crate::case::ExpectError, vars: &Placeholders) -> String {
    let mut parts = Vec::new();
    if let Some(line) = expect.line {
        let file = expect
            .file
            .as_deref()
            .unwrap_or(&case.spec.build.dockerfile);
        parts.push(format!("{file}:{line}:"));
    }
    parts.extend(
        expect
            .contains
            .iter()
            .map(|c| format!("{:?}", vars.apply(c))),
    );
    parts.join(" ... ")
}

#[allow(clippy::too_many_arguments)]
async fn run_build(
    daemon: &TestDaemon,
    case: &Case,
    staged: &Staged,
    dockerfile: &str,
    opts: &BTreeMap<String, String>,
    image_name: &str,
    vars: &Placeholders,
) -> Built {
    let mut attrs: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.clone(), vars.apply(v)))
        .collect();
    if dockerfile != "Dockerfile" {
        attrs.insert("filename".into(), dockerfile.into());
    }
    let mut locals = BTreeMap::from([
        ("context".to_string(), staged.context.clone()),
        ("dockerfile".to_string(), staged.dockerfile_dir.clone()),
    ]);
    locals.extend(staged.locals.clone());
    let secrets = case
        .spec
        .build
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), vars.apply(v).into_bytes()))
        .collect();
    let request = BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: attrs,
        services: SessionServices {
            locals,
            secrets,
            ..Default::default()
        },
        exporters: vec![(
            "image".into(),
            BTreeMap::from([("name".to_string(), image_name.to_string())]),
        )],
        entitlements: case.spec.build.allow.clone(),
        ..Default::default()
    };
    let mut updates: Vec<StatusResponse> = Vec::new();
    let timeout = Duration::from_secs(case.spec.build.timeout_secs);
    let channel = daemon.channel().await;
    let result = tokio::time::timeout(
        timeout,
        build(channel, request, |u| updates.push(u.clone())),
    )
    .await;
    let result = match result {
        Ok(r) => r.map_err(|e| format!("{e:#}")),
        Err(_) => Err(format!("the build did not finish within {timeout:?}")),
    };
    let logs = updates
        .iter()
        .flat_map(|u| u.logs.iter())
        .map(|l| String::from_utf8_lossy(&l.msg).into_owned())
        .collect();
    let warnings = updates
        .iter()
        .flat_map(|u| u.warnings.iter())
        .map(|w| format!("{}\n", String::from_utf8_lossy(&w.short)))
        .collect();
    Built {
        result,
        logs,
        warnings,
    }
}

fn check_logs(case: &Case, logs: &str, vars: &Placeholders, failures: &mut Vec<String>) {
    for want in &case.spec.logs.contains {
        let want = vars.apply(want);
        if !logs.contains(&want) {
            failures.push(format!("step output lacks {want:?}{}", log_tail(logs)));
        }
    }
    for unwanted in &case.spec.logs.not_contains {
        let unwanted = vars.apply(unwanted);
        if logs.contains(&unwanted) {
            failures.push(format!(
                "step output contains {unwanted:?}{}",
                log_tail(logs)
            ));
        }
    }
}

fn check_warnings(case: &Case, warnings: &str, vars: &Placeholders, failures: &mut Vec<String>) {
    let spec = &case.spec.warnings;
    for want in &spec.contains {
        let want = vars.apply(want);
        if !warnings.contains(&want) {
            failures.push(format!("warnings lack {want:?}; warnings:\n{warnings}"));
        }
    }
    for unwanted in &spec.not_contains {
        let unwanted = vars.apply(unwanted);
        if warnings.contains(&unwanted) {
            failures.push(format!("warnings contain {unwanted:?}"));
        }
    }
}

fn check_config(case: &Case, config: &Value, vars: &Placeholders, failures: &mut Vec<String>) {
    let spec = &case.spec;
    for (pointer, want) in &spec.config {
        let want = vars.apply_json(want);
        let actual = config.pointer(pointer);
        if actual != Some(&want) {
            failures.push(format!(
                "config {pointer}:\n      expected: {}\n      actual:   {}",
                want,
                show(actual)
            ));
        }
    }
    for (pointer, want) in &spec.config_contains {
        let want = vars.apply_json(want);
        let actual = config.pointer(pointer);
        if !contains(actual, &want) {
            failures.push(format!(
                "config {pointer}:\n      expected to contain: {}\n      actual: {}",
                want,
                show(actual)
            ));
        }
    }
    for pointer in &spec.config_absent.paths {
        if let Some(actual) = config.pointer(pointer).filter(|v| !v.is_null()) {
            failures.push(format!(
                "config {pointer}: expected absent, actual: {actual}"
            ));
        }
    }
    for (pointer, want) in &spec.config_len {
        let actual = config.pointer(pointer).and_then(|v| match v {
            Value::Array(a) => Some(a.len()),
            Value::Object(o) => Some(o.len()),
            _ => None,
        });
        if actual != Some(*want) {
            failures.push(format!(
                "config {pointer}: expected {want} entries, actual: {}",
                show(config.pointer(pointer))
            ));
        }
    }
    let history: Vec<&Value> = config["history"]
        .as_array()
        .map(|h| h.iter().collect())
        .unwrap_or_default();
    if let Some(len) = spec.history.len {
        if history.len() != len {
            failures.push(format!(
                "history: expected {len} entries, actual {}: {}",
                history.len(),
                show(config.pointer("/history"))
            ));
        }
    }
    let tail = &spec.history.tail;
    if !tail.is_empty() {
        let actual: Vec<String> = history
            .iter()
            .rev()
            .take(tail.len())
            .rev()
            .map(|h| h["created_by"].as_str().unwrap_or("<none>").to_string())
            .collect();
        let want: Vec<String> = tail.iter().map(|t| vars.apply(t)).collect();
        if actual != want {
            failures.push(format!(
                "history created_by (last {}):\n      expected: {want:#?}\n      actual:   {actual:#?}",
                want.len()
            ));
        }
    }
    let flags = &spec.history.tail_empty_layer;
    if !flags.is_empty() {
        let actual: Vec<bool> = history
            .iter()
            .rev()
            .take(flags.len())
            .rev()
            .map(|h| h["empty_layer"].as_bool().unwrap_or(false))
            .collect();
        if &actual != flags {
            failures.push(format!(
                "history empty_layer (last {}):\n      expected: {flags:?}\n      actual:   {actual:?}",
                flags.len()
            ));
        }
    }
}

/// Array: every expected element is present; object: every expected entry is equal;
/// string: substring; anything else: equal.
fn contains(actual: Option<&Value>, want: &Value) -> bool {
    match (actual, want) {
        (Some(Value::Array(have)), Value::Array(want)) => want.iter().all(|w| have.contains(w)),
        (Some(Value::Array(have)), w) => have.contains(w),
        (Some(Value::Object(have)), Value::Object(want)) => {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        }
        (Some(Value::String(have)), Value::String(want)) => have.contains(want.as_str()),
        (Some(have), want) => have == want,
        (None, _) => false,
    }
}

/// Runs the container; when output was expected and `ctr run` returned none at all (seen once
/// under load: ctr lost a quickly exiting task's output), runs it a second time. A real wrong
/// or missing output fails both times.
async fn run_once_more_if_silent(
    image: &str,
    cmd: &[String],
    run: &Run,
) -> anyhow::Result<image::Output> {
    let out = image::run(image, cmd).await?;
    let expected_output = run.stdout.as_deref().is_some_and(|s| !s.is_empty());
    if expected_output && out.code == 0 && out.stdout.is_empty() && out.stderr.is_empty() {
        return image::run(image, cmd).await;
    }
    Ok(out)
}

async fn check_run(case: &Case, run: &Run, vars: &Placeholders, failures: &mut Vec<String>) {
    let cmd: Vec<String> = run.cmd.iter().map(|c| vars.apply(c)).collect();
    let shown = if cmd.is_empty() {
        "<image default>".to_string()
    } else {
        format!("{cmd:?}")
    };
    let out = match run_once_more_if_silent(&case.image(), &cmd, run).await {
        Ok(out) => out,
        Err(e) => {
            failures.push(format!("run {shown}: {e:#}"));
            return;
        }
    };
    if out.code != run.exit {
        failures.push(format!(
            "run {shown}: exit status {} (expected {})\n      stdout: {:?}\n      stderr: {:?}",
            out.code,
            run.exit,
            clip(&out.stdout, 800),
            clip(&out.stderr, 800)
        ));
        return;
    }
    if let Some(want) = &run.stdout {
        let want = vars.apply(want);
        if out.stdout != want {
            failures.push(format!(
                "run {shown}:\n      expected stdout: {want:?}\n      actual stdout:   {:?}\n      stderr: {:?}",
                clip(&out.stdout, 1500),
                clip(&out.stderr, 800)
            ));
        }
    }
    for want in &run.contains {
        let want = vars.apply(want);
        if !out.stdout.contains(&want) {
            failures.push(format!(
                "run {shown}: stdout lacks {want:?}\n      actual stdout: {:?}",
                clip(&out.stdout, 1500)
            ));
        }
    }
}

fn show(v: Option<&Value>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "<absent>".into())
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The last lines the steps printed, for a failure report.
fn log_tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let from = lines.len().saturating_sub(12);
    let tail: Vec<String> = lines[from..]
        .iter()
        .map(|l| format!("      | {}", clip(l, 200)))
        .collect();
    format!("\n      step output (last lines):\n{}", tail.join("\n"))
}
