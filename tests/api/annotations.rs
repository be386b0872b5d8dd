//! Annotations from the image exporters' `annotation*` attributes: in the manifests and the
//! index pushed to the loopback registry (read back with skopeo), in the stored manifest of a
//! single-platform image, on the image record's target, in an OCI tarball's `index.json`; and
//! BuildKit's refusals.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};
use serde_json::{json, Value};

use crate::helpers::{busybox, definition, run_build, skopeo_raw_manifest};

/// A Dockerfile that builds for any platform without running anything (COPY only), so both
/// platforms build on any node.
const COPY_ONLY: &str = "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n";

/// A two-platform (amd64, arm64) build of `COPY_ONLY` in `dir`, exported as `exporter` asks.
fn two_platforms(dir: &Path, exporter: (&str, BTreeMap<String, String>)) -> BuildRequest {
    std::fs::write(dir.join("Dockerfile"), COPY_ONLY).unwrap();
    std::fs::write(dir.join("hello.txt"), format!("{}\n", std::process::id())).unwrap();
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs: BTreeMap::from([
            ("build-arg:BASE".into(), TestEnv::get().local_image.clone()),
            ("platform".into(), "linux/amd64,linux/arm64".into()),
        ]),
        services: SessionServices {
            locals,
            ..Default::default()
        },
        exporters: vec![(exporter.0.to_string(), exporter.1)],
        ..Default::default()
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The raw manifest (or index) the loopback registry has at `reference`.
fn registry_json(reference: &str) -> (Vec<u8>, Value) {
    let raw = skopeo_raw_manifest(&["--tls-verify=false"], &format!("docker://{reference}"));
    let json = serde_json::from_slice(&raw).unwrap();
    (raw, json)
}

/// The exporter response's `containerimage.descriptor`, decoded.
fn response_descriptor(response: &BTreeMap<String, String>) -> Value {
    let encoded = &response["containerimage.descriptor"];
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The annotations of the image record `name` points at (its target descriptor's).
async fn record_annotations(name: &str) -> BTreeMap<String, String> {
    let worker = TestEnv::get().worker("annotations-record").await;
    let record = nodekitd::worker::images::get_image(worker.channel(), worker.ctx(), name)
        .await
        .unwrap()
        .expect("the image record");
    record.target.annotations.into_iter().collect()
}

#[tokio::test]
async fn a_pushed_two_platform_image_carries_its_index_and_manifest_annotations() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("annotations-push").await;
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/nodekit/annotated:{}", env.registry, std::process::id());
    let exporter = attrs(&[
        ("name", &name),
        ("push", "true"),
        ("annotation.org.opencontainers.image.title", "nodekit-test"),
        (
            "annotation-manifest[linux/arm64].org.example.arch",
            "arm64-only",
        ),
        (
            "annotation-manifest-descriptor.org.example.desc",
            "described",
        ),
        (
            "annotation-manifest-descriptor[linux/amd64].org.example.desc",
            "amd64-described",
        ),
        (
            "annotation-index.org.opencontainers.image.description",
            "two platforms",
        ),
        (
            "annotation-index-descriptor.org.example.top",
            "on-the-record",
        ),
    ]);
    let (result, _) = run_build(&daemon, two_platforms(dir.path(), ("image", exporter))).await;
    let response = result.unwrap();

    let (raw, index) = registry_json(&name);
    assert_eq!(
        nodekitd::oci::sha256_digest(&raw),
        response["containerimage.digest"],
        "the pushed index is the stored one"
    );
    assert_eq!(
        index["annotations"],
        json!({"org.opencontainers.image.description": "two platforms"})
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        let arch = entry["platform"]["architecture"].as_str().unwrap();
        let described = if arch == "amd64" {
            "amd64-described"
        } else {
            "described"
        };
        assert_eq!(
            entry["annotations"],
            json!({"org.example.desc": described}),
            "{arch}"
        );
        let digest = entry["digest"].as_str().unwrap();
        let repository = name.rsplit_once(':').unwrap().0;
        let (_, manifest) = registry_json(&format!("{repository}@{digest}"));
        let mut expected = json!({"org.opencontainers.image.title": "nodekit-test"});
        if arch == "arm64" {
            expected["org.example.arch"] = json!("arm64-only");
        }
        assert_eq!(manifest["annotations"], expected, "{arch}");
    }
    // A registry has no place for the index descriptor's: the node's image record and the
    // response carry them, as buildkitd's do.
    let top = BTreeMap::from([("org.example.top".to_string(), "on-the-record".to_string())]);
    assert_eq!(record_annotations(&name).await, top);
    assert_eq!(response_descriptor(&response)["annotations"], json!(top));
    daemon.stop().await;
    ctr(env, &["images", "rm", &name]);
}

#[tokio::test]
async fn a_single_platform_image_has_its_annotations_in_the_stored_manifest() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("annotations-single").await;
    let name = format!("nodekit.test/annotated-single:{}", std::process::id());
    let native = nodekitd::oci::Platform::native().to_string();
    let qualified = format!("annotation-manifest[{native}].org.example.native");
    let exporter = attrs(&[
        ("name", &name),
        ("annotation.org.example.k", "v"),
        (&qualified, "yes"),
        (
            "annotation-manifest-descriptor.org.example.d",
            "on-the-record",
        ),
    ]);
    let state = busybox().run(["sh", "-c", "echo single > /single"]).root();
    let request = |exporter: BTreeMap<String, String>| BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("image".into(), exporter)],
        ..Default::default()
    };
    let (result, _) = run_build(&daemon, request(exporter)).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let stored = ctr(env, &["content", "get", &digest]);
    let manifest: Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(
        manifest["annotations"],
        json!({"org.example.k": "v", "org.example.native": "yes"})
    );
    assert_eq!(
        record_annotations(&name).await,
        BTreeMap::from([("org.example.d".to_string(), "on-the-record".to_string())])
    );

    // What BuildKit refuses, refused naming the attribute.
    for (key, says) in [
        ("annotation-index.org.example.i", "single platform"),
        (
            "annotation-manifest[linux/s390x].org.example.k",
            "no platform linux/s390x",
        ),
    ] {
        let refused = attrs(&[("name", &name), (key, "v")]);
        let error = run_build(&daemon, request(refused)).await.0.unwrap_err();
        assert!(
            error.contains(key) && error.contains(says),
            "{key}: {error}"
        );
    }
    daemon.stop().await;
    ctr(env, &["images", "rm", &name]);
}

#[tokio::test]
async fn an_oci_tarball_has_the_index_descriptors_annotations_in_index_json() {
    let daemon = TestDaemon::start("annotations-tarball").await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("image.tar");
    let context = tempfile::tempdir().unwrap();
    let exporter = attrs(&[
        ("name", "nodekit.test/annotated-tarball:1"),
        ("dest", &dest.display().to_string()),
        (
            "annotation-index-descriptor.org.example.top",
            "in-index-json",
        ),
        ("annotation-index.org.example.i", "in-the-index"),
    ]);
    let (result, _) = run_build(&daemon, two_platforms(context.path(), ("oci", exporter))).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let index_json: Value = serde_json::from_slice(&tar_entry(&dest, "index.json")).unwrap();
    let entry = &index_json["manifests"][0];
    assert_eq!(entry["digest"], json!(digest));
    assert_eq!(entry["annotations"]["org.example.top"], "in-index-json");
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "nodekit.test/annotated-tarball:1"
    );
    let index: Value = serde_json::from_slice(&tar_entry(
        &dest,
        &format!("blobs/{}", digest.replacen(':', "/", 1)),
    ))
    .unwrap();
    assert_eq!(
        index["annotations"],
        json!({"org.example.i": "in-the-index"})
    );
    daemon.stop().await;
}

/// The bytes of the entry `path` of the tarball at `tarball`.
fn tar_entry(tarball: &Path, path: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().display().to_string() == path {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no {path} in {}", tarball.display());
}
