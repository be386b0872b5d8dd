//! A step's layer blob is written when something needs it, not when the step commits: the
//! commit only hashes the layer (its digest names the snapshot); the export writes the blob from
//! the snapshot, with that digest, into the content store the image points at.

use nodekit::build::BuildRequest;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::helpers::{busybox, definition, image_output, run_build, run_in_image};

/// The digests the content store holds.
fn blobs() -> Vec<String> {
    let listed = ctr(TestEnv::get(), &["content", "ls", "-q"]);
    assert!(listed.status.success(), "ctr content ls");
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The layer digests of the manifest `digest` (a single-platform image).
fn manifest_layers(digest: &str) -> Vec<String> {
    let manifest = ctr(TestEnv::get(), &["content", "get", digest]);
    assert!(manifest.status.success(), "ctr content get {digest}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest.stdout).expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

#[tokio::test]
async fn a_layer_blob_is_written_by_the_export_that_needs_it() {
    let daemon = TestDaemon::start("lazy-layer").await;
    // Random content: no other build or image can have this layer already.
    let state = busybox()
        .run([
            "sh",
            "-c",
            "head -c 300000 /dev/urandom > /payload && md5sum /payload > /payload.md5",
        ])
        .root();
    let solve_only = BuildRequest {
        definition: Some(definition(&state)),
        ..Default::default()
    };
    run_build(&daemon, solve_only).await.0.expect("solve");
    let before_export = blobs();

    // The same definition again: the step is cached, the export writes its layer.
    let name = "nodekit.test/api-lazy-layer:1";
    let export = BuildRequest {
        definition: Some(definition(&state)),
        exporters: image_output(name),
        ..Default::default()
    };
    let response = run_build(&daemon, export).await.0.expect("export");
    let layers = manifest_layers(&response["containerimage.digest"]);
    let built = layers.last().expect("a built layer");
    assert!(
        !before_export.contains(built),
        "the step's layer {built} was written before anything needed it"
    );
    assert!(blobs().contains(built), "the export did not write {built}");
    // containerd checked the digest on commit; the image runs from the build's own snapshots.
    assert_eq!(
        run_in_image(name, &["md5sum", "-c", "/payload.md5"]),
        "/payload: OK\n"
    );
    daemon.stop().await;
}
