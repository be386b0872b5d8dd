//! Golden LLB of the Dockerfile converter, no containerd needed: for a representative set of
//! the conformance cases (`tests/dockerfile/cases/`), the definition the converter makes for
//! linux/amd64 and the image config it writes, as readable JSON, against the checked-in files
//! under `tests/golden/`. Base images come through the `BaseImages` seam with one fixed config.
//!
//! `NODEKIT_UPDATE_GOLDEN=1 cargo test -p nodekitd --test dockerfile_golden` rewrites the files
//! after an intended change; review their diff like code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::{BoxFuture, FutureExt};
use nodekit_proto::pb;
use nodekitd::frontend::dockerfile::convert::{convert, BaseImages, ConvertRequest};
use nodekitd::frontend::dockerfile::options::Options;
use nodekitd::oci::Platform;
use nodekitd::solver::SolveError;
use prost::Message;
use serde_json::{json, Value};

/// Cases covering every instruction kind, stages, mounts, heredocs, args and platforms.
const CASES: &[&str] = &[
    "arg-global-and-stage",
    "base-config-inherited",
    "cmd-entrypoint-exec",
    "copy-chown",
    "copy-from-stage-and-index",
    "copy-link",
    "copy-parents",
    "env-forms",
    "healthcheck",
    "heredoc-run",
    "multistage-target",
    "onbuild-recorded",
    "platform-args-default",
    "run-mount-bind-from-stage",
    "run-mount-tmpfs",
    "run-mount-secret",
    "run-network-none",
    "run-security-insecure",
    "run-ulimit-hostname",
    "shell-instruction",
    "user-name-and-ids",
    "workdir",
];

/// Every base image: busybox's config, pinned to nothing.
struct FixedBases;

impl BaseImages for FixedBases {
    fn config<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<(String, Vec<u8>), SolveError>> {
        let config = json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["sh"],
            },
            "rootfs": { "type": "layers", "diff_ids": [] },
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        async move { Ok((reference.to_string(), bytes)) }.boxed()
    }
}

#[tokio::test]
async fn the_converter_makes_the_checked_in_llb() {
    let update = std::env::var("NODEKIT_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut differing = Vec::new();
    for case in CASES {
        let rendered = render(case).await;
        let golden = golden_dir().join(format!("{case}.json"));
        if update {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (NODEKIT_UPDATE_GOLDEN=1 makes it)",
                golden.display()
            )
        });
        if want != rendered {
            differing.push(format!("{case}: {}", first_difference(&want, &rendered)));
        }
    }
    assert!(
        differing.is_empty(),
        "converted LLB differs from tests/golden (NODEKIT_UPDATE_GOLDEN=1 rewrites it):\n{}",
        differing.join("\n")
    );
}

/// The case's definition and image config as pretty JSON.
async fn render(case: &str) -> String {
    let dir = cases_dir().join(case);
    let opts = build_opts(&dir);
    let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let dockerfile = nodekit_dockerfile::parse(&text).unwrap();
    let platform = Platform::parse("linux/amd64").unwrap();
    let mut options = Options::parse(&opts).unwrap();
    options.platforms = vec![platform.clone()];
    let converted = convert(&ConvertRequest {
        dockerfile: &dockerfile,
        file: "Dockerfile",
        options: &options,
        ignore: &[],
        platform: &platform,
        build_platform: &platform,
        bases: &FixedBases,
        inputs: &Default::default(),
    })
    .await
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    let definition = nodekit_llb_builder::marshal(&converted.state).unwrap();
    let image: Value = serde_json::from_slice(&converted.image.to_bytes()).unwrap();
    let rendered = json!({ "ops": ops(&definition), "image": image });
    serde_json::to_string_pretty(&rendered).unwrap() + "\n"
}

/// Each op of the definition, decoded, with its digest and metadata, in definition order.
fn ops(definition: &pb::Definition) -> Vec<Value> {
    definition
        .def
        .iter()
        .map(|bytes| {
            let digest = nodekit_llb::digest_of(bytes);
            let op = pb::Op::decode(bytes.as_slice()).unwrap();
            let metadata = definition.metadata.get(&digest);
            json!({ "digest": digest, "op": op, "metadata": metadata })
        })
        .collect()
}

/// `[build.opts]` of the case's `case.toml`.
fn build_opts(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("case.toml")).unwrap();
    let spec: toml::Value = toml::from_str(&text).unwrap();
    let opts: BTreeMap<String, String> = spec
        .get("build")
        .and_then(|b| b.get("opts"))
        .and_then(|o| o.as_table())
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        opts.values().all(|v| !v.contains("{{")),
        "a golden case takes no placeholders: {opts:?}"
    );
    opts
}

fn first_difference(want: &str, got: &str) -> String {
    let line = want
        .lines()
        .zip(got.lines())
        .position(|(w, g)| w != g)
        .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
    format!(
        "line {}: want {:?}, got {:?}",
        line + 1,
        want.lines().nth(line).unwrap_or("<end>"),
        got.lines().nth(line).unwrap_or("<end>")
    )
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dockerfile/cases")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}
