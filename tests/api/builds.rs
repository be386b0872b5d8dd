//! LLB builds through Control.Solve: steps run on the host containerd, their output streams into
//! Status, the result lands in the image store and runs.

use nodekit::build::BuildRequest;
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, image_output, logs, run_build, run_in_image};

#[tokio::test]
async fn an_exec_result_is_exported_into_the_image_store_and_runs() {
    let daemon = TestDaemon::start("exec-export").await;
    let state = busybox()
        .run([
            "sh",
            "-c",
            "echo step-stdout; echo step-stderr >&2; echo built > /built",
        ])
        .root();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: image_output("nodekit.test/api-exec:1"),
        ..Default::default()
    };
    let (result, updates) = run_build(&daemon, request).await;
    let response = result.unwrap();
    assert!(response["containerimage.digest"].starts_with("sha256:"));
    assert!(response["containerimage.config.digest"].starts_with("sha256:"));
    assert_eq!(response["image.name"], "nodekit.test/api-exec:1");
    assert_eq!(
        run_in_image("nodekit.test/api-exec:1", &["cat", "/built"]),
        "built\n"
    );

    let logs = logs(&updates);
    assert!(
        logs.contains("step-stdout") && logs.contains("step-stderr"),
        "{logs}"
    );
    let vertices: Vec<_> = updates.iter().flat_map(|u| u.vertexes.iter()).collect();
    let exec = vertices
        .iter()
        .filter(|v| v.name.contains("echo built"))
        .collect::<Vec<_>>();
    assert!(exec.iter().any(|v| v.started.is_some()), "{vertices:?}");
    assert!(
        exec.iter()
            .any(|v| v.completed.is_some() && v.error.is_empty()),
        "{vertices:?}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_failing_step_fails_the_build_with_its_exit_code() {
    let daemon = TestDaemon::start("exec-fail").await;
    let state = busybox()
        .run(["sh", "-c", "echo about-to-fail; exit 3"])
        .root();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        ..Default::default()
    };
    let (result, updates) = run_build(&daemon, request).await;
    let error = result.unwrap_err();
    assert!(error.contains("exit code: 3"), "{error}");
    assert!(logs(&updates).contains("about-to-fail"));
    let failed = updates
        .iter()
        .flat_map(|u| u.vertexes.iter())
        .find(|v| !v.error.is_empty());
    assert!(failed.is_some_and(|v| v.error.contains("exit code: 3")));
    daemon.stop().await;
}

#[tokio::test]
async fn independent_branches_and_file_ops_combine() {
    let daemon = TestDaemon::start("branches").await;
    let a = busybox().run(["sh", "-c", "echo a > /a"]).root();
    let b = busybox().run(["sh", "-c", "echo b > /b"]).root();
    let copy = nodekit_llb_builder::Copy::new(&b, "/b", "/from-b");
    let mkdir = nodekit_llb_builder::Mkdir::new("/made/deep", 0o750).parents(true);
    let state = a.file(nodekit_llb_builder::FileAction::new(copy).then(mkdir));
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: image_output("nodekit.test/api-branches:1"),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    let out = run_in_image(
        "nodekit.test/api-branches:1",
        &["sh", "-c", "cat /a /from-b; stat -c %a /made/deep"],
    );
    assert_eq!(out, "a\nb\n750\n");
    daemon.stop().await;
}

#[tokio::test]
async fn the_exporter_stores_several_names_with_zstd_layers() {
    let daemon = TestDaemon::start("exporter-options").await;
    let state = busybox().run(["sh", "-c", "echo zstd > /z"]).root();
    let attrs = [
        ("name", "nodekit.test/api-zstd:1,nodekit.test/api-zstd:2"),
        ("compression", "zstd"),
        ("unpack", "true"),
    ];
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        exporters: vec![("image".into(), attrs)],
        ..Default::default()
    };
    let response = run_build(&daemon, request).await.0.unwrap();
    assert_eq!(
        response["image.name"],
        "nodekit.test/api-zstd:1,nodekit.test/api-zstd:2"
    );
    for name in ["nodekit.test/api-zstd:1", "nodekit.test/api-zstd:2"] {
        assert_eq!(run_in_image(name, &["cat", "/z"]), "zstd\n");
    }
    let manifest = content_of(&response["containerimage.digest"]);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.last().unwrap()["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    daemon.stop().await;
}

/// A blob of the content store, as JSON.
fn content_of(digest: &str) -> serde_json::Value {
    let output = nodekit_test_support::ctr(
        nodekit_test_support::TestEnv::get(),
        &["content", "get", digest],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn merge_and_diff_stack_existing_layers() {
    let daemon = TestDaemon::start("merge-diff").await;
    let base = busybox();
    let with_a = base.run(["sh", "-c", "echo a > /a"]).root();
    let only_b =
        nodekit_llb_builder::scratch().file(nodekit_llb_builder::Mkfile::new("/b", 0o644, "b\n"));
    let merged = nodekit_llb_builder::merge(&[with_a.clone(), only_b]);
    let request = BuildRequest {
        definition: Some(definition(&merged)),
        exporters: image_output("nodekit.test/api-merge:1"),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    assert_eq!(
        run_in_image("nodekit.test/api-merge:1", &["cat", "/a", "/b"]),
        "a\nb\n"
    );

    // A diff against a prefix is the upper's own layers; against a sibling, a computed layer
    // (with /a deleted). Either merges back onto the base.
    let with_c = with_a.run(["sh", "-c", "echo c > /c"]).root();
    let sibling = base.run(["sh", "-c", "echo s > /s"]).root();
    let onto_base = nodekit_llb_builder::merge(&[
        base.clone(),
        nodekit_llb_builder::diff(&with_a, &with_c),
        nodekit_llb_builder::diff(&with_a, &sibling),
    ]);
    let request = BuildRequest {
        definition: Some(definition(&onto_base)),
        exporters: image_output("nodekit.test/api-diff:1"),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    let script = "cat /c /s; test -e /a && echo a-present || echo a-absent";
    assert_eq!(
        run_in_image("nodekit.test/api-diff:1", &["sh", "-c", script]),
        "c\ns\na-absent\n"
    );
    daemon.stop().await;
}
