//! Local sources through a real client session: the directory arrives, a second build sends
//! only what changed, and a session without the directory is a clear error.

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_llb_builder::{local, Copy, Local};
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, image_output, run_build, run_in_image};

fn request_with(
    dir: &std::path::Path,
    state: &nodekit_llb_builder::State,
    image: &str,
) -> BuildRequest {
    BuildRequest {
        definition: Some(definition(state)),
        services: SessionServices {
            locals: BTreeMap::from([("context".to_string(), dir.to_path_buf())]),
            ..Default::default()
        },
        exporters: image_output(image),
        ..Default::default()
    }
}

/// The "transferring" status line of a build.
fn transfer_line(updates: &[StatusResponse]) -> String {
    updates
        .iter()
        .flat_map(|u| u.statuses.iter())
        .find(|s| s.id.starts_with("transferring"))
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_local_directory_is_copied_in_and_resent_incrementally() {
    let daemon = TestDaemon::start("local").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kept.txt"), "kept\n").unwrap();
    std::fs::write(dir.path().join("changed.txt"), "one\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/ü-file"), "non-ascii\n").unwrap();
    let context = Local::new("context")
        .shared_key_hint("api-local")
        .into_state();
    let state = busybox().file(
        Copy::new(&context, "/", "/ctx/")
            .copy_dir_contents_only(true)
            .create_dest_path(true),
    );

    let (result, updates) = run_build(
        &daemon,
        request_with(dir.path(), &state, "nodekit.test/api-local:1"),
    )
    .await;
    result.unwrap();
    assert!(
        transfer_line(&updates).contains("3 files sent"),
        "{}",
        transfer_line(&updates)
    );
    let listing = run_in_image(
        "nodekit.test/api-local:1",
        &[
            "sh",
            "-c",
            "cat /ctx/kept.txt /ctx/changed.txt /ctx/sub/ü-file",
        ],
    );
    assert_eq!(listing, "kept\none\nnon-ascii\n");

    std::fs::write(dir.path().join("changed.txt"), "two\n").unwrap();
    let (result, updates) = run_build(
        &daemon,
        request_with(dir.path(), &state, "nodekit.test/api-local:2"),
    )
    .await;
    result.unwrap();
    assert!(
        transfer_line(&updates).contains("1 files sent, 2 unchanged"),
        "{}",
        transfer_line(&updates)
    );
    assert_eq!(
        run_in_image("nodekit.test/api-local:2", &["cat", "/ctx/changed.txt"]),
        "two\n"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_local_source_the_session_does_not_offer_is_an_error() {
    let daemon = TestDaemon::start("local-missing").await;
    let dir = tempfile::tempdir().unwrap();
    let state = busybox().file(Copy::new(local("other"), "/", "/x/"));
    let (result, _) = run_build(
        &daemon,
        request_with(dir.path(), &state, "nodekit.test/api-missing:1"),
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.contains("other"), "{error}");
    daemon.stop().await;
}
