//! Exec mounts beyond the root: cache mounts kept across builds, secrets from the session (as
//! files and environment), sub-path selectors; and vertices shared by concurrent builds.

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_llb_builder::{CacheSharing, Mount, Secret, State};
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, image_output, run_build, run_in_image};

fn exported(state: &State, image: &str) -> BuildRequest {
    BuildRequest {
        definition: Some(definition(state)),
        exporters: image_output(image),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_cache_mount_keeps_its_content_across_builds() {
    let daemon = TestDaemon::start("cache-mount").await;
    let id = format!("api-cache-{}", rand::random::<u64>());
    let step = |script: &str| {
        busybox()
            .run(["sh", "-c", script])
            .mount("/cache", Mount::cache(&id, CacheSharing::Locked))
            .root()
    };
    run_build(
        &daemon,
        exported(&step("echo one >> /cache/log"), "nodekit.test/api-cache:1"),
    )
    .await
    .0
    .unwrap();
    let second = step("echo two >> /cache/log; cp /cache/log /log");
    run_build(&daemon, exported(&second, "nodekit.test/api-cache:2"))
        .await
        .0
        .unwrap();
    assert_eq!(
        run_in_image("nodekit.test/api-cache:2", &["cat", "/log"]),
        "one\ntwo\n"
    );
    // The cache is not part of the image, nor is its mount point.
    let script = "test -e /cache && echo present || echo absent";
    let cache_dir = run_in_image("nodekit.test/api-cache:2", &["sh", "-c", script]);
    assert_eq!(cache_dir, "absent\n");
    daemon.stop().await;
}

#[tokio::test]
async fn secrets_arrive_as_files_and_environment_and_stay_out_of_the_image() {
    let daemon = TestDaemon::start("secrets").await;
    let state = busybox()
        .run(["sh", "-c", "cat /run/secrets/token > /seen; echo \" $TOKEN\" >> /seen; stat -c %a /run/secrets/token >> /seen"])
        .secret(Secret::file("token", "/run/secrets/token"))
        .secret(Secret::env("token", "TOKEN"))
        .secret(Secret::file("absent", "/run/secrets/absent").optional())
        .root();
    let mut request = exported(&state, "nodekit.test/api-secret:1");
    request.services = SessionServices {
        secrets: BTreeMap::from([("token".to_string(), b"s3cr3t".to_vec())]),
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    let seen = run_in_image(
        "nodekit.test/api-secret:1",
        &["sh", "-c", "cat /seen; ls -A /run/secrets 2>&1 || true"],
    );
    assert!(seen.starts_with("s3cr3t s3cr3t\n400\n"), "{seen}");
    assert!(
        !seen.contains("token\n"),
        "the secret's mount point stays out of the image: {seen}"
    );

    let needs = busybox()
        .run(["true"])
        .secret(Secret::file("missing", "/run/secrets/m"))
        .root();
    let error = run_build(&daemon, exported(&needs, "nodekit.test/api-secret:2"))
        .await
        .0
        .unwrap_err();
    assert!(error.contains("secret missing: not found"), "{error}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_selector_mounts_a_sub_path_of_another_result() {
    let daemon = TestDaemon::start("selector").await;
    let data = busybox()
        .run([
            "sh",
            "-c",
            "mkdir -p /data/sub && echo inner > /data/sub/file",
        ])
        .root();
    let state = busybox()
        .run(["sh", "-c", "ls /mnt > /listing"])
        .mount("/mnt", Mount::bind(&data).selector("/data/sub").readonly())
        .root();
    run_build(&daemon, exported(&state, "nodekit.test/api-selector:1"))
        .await
        .0
        .unwrap();
    assert_eq!(
        run_in_image("nodekit.test/api-selector:1", &["cat", "/listing"]),
        "file\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn concurrent_builds_share_an_identical_step() {
    let daemon = TestDaemon::start("sharing").await;
    let marker = rand::random::<u64>();
    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("sleep 1; echo {marker} $RANDOM$RANDOM > /ran"),
        ])
        .root();
    let (a, b) = tokio::join!(
        run_build(&daemon, exported(&state, "nodekit.test/api-share:a")),
        run_build(&daemon, exported(&state, "nodekit.test/api-share:b")),
    );
    a.0.unwrap();
    b.0.unwrap();
    let (ran_a, ran_b) = (
        run_in_image("nodekit.test/api-share:a", &["cat", "/ran"]),
        run_in_image("nodekit.test/api-share:b", &["cat", "/ran"]),
    );
    assert_eq!(ran_a, ran_b, "the step ran once for both builds");
    // The second build shows the shared step as its own.
    assert!(b
        .1
        .iter()
        .flat_map(|u| u.vertexes.iter())
        .any(|v| v.name.contains("sleep 1") && v.completed.is_some()));
    daemon.stop().await;
}
