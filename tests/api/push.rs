//! Images that leave the node: `push=true` and the `registry` exporter against the loopback
//! registry. A refused push leaves the node's image store as it was; `store=false` pushes
//! without naming the image on the node; two outputs in one build both happen.

use std::collections::BTreeMap;

use nodekit::build::BuildRequest;
use nodekit_proto::moby::buildkit::v1::StatusResponse;
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::helpers::{busybox, definition, run_build};

/// A build of a step writing `text`, exported by `outputs` (type, attributes).
fn build_of(text: &str, outputs: &[(&str, &[(&str, &str)])]) -> BuildRequest {
    let state = busybox()
        .run(["sh", "-c", &format!("echo {text} > /pushed")])
        .root();
    let exporters: Vec<(String, BTreeMap<String, String>)> = outputs
        .iter()
        .map(|(kind, attrs)| {
            let attrs = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            (kind.to_string(), attrs.collect())
        })
        .collect();
    BuildRequest {
        definition: Some(definition(&state)),
        exporters,
        ..Default::default()
    }
}

/// The digest `name` points at in the node's image store, if it is there.
pub fn stored_digest(name: &str) -> Option<String> {
    let listing = ctr(TestEnv::get(), &["images", "ls"]);
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
}

/// The digest the test registry has under `name` (`host/repo:tag`), if any.
fn registry_digest(name: &str) -> Option<String> {
    let (host_repo, tag) = name.rsplit_once(':')?;
    let (host, repo) = host_repo.split_once('/')?;
    let output = std::process::Command::new("curl")
        .args([
            "-sfI",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
}

/// The names of every status of a build's steps, in order.
fn status_names(updates: &[StatusResponse]) -> Vec<String> {
    updates
        .iter()
        .flat_map(|u| u.statuses.iter().map(|s| s.name.clone()))
        .collect()
}

#[tokio::test]
async fn a_refused_push_leaves_the_image_store_as_it_was() {
    let daemon = TestDaemon::start("push-refused").await;
    // Nothing listens on port 1.
    let name = format!("127.0.0.1:1/nodekit/refused:{}", std::process::id());
    let (result, _) = run_build(&daemon, build_of("one", &[("image", &[("name", &name)])])).await;
    result.unwrap();
    let before = stored_digest(&name).expect("the first image is stored");

    let push = [("name", name.as_str()), ("push", "true")];
    let (result, _) = run_build(&daemon, build_of("two", &[("image", &push)])).await;
    let error = result.unwrap_err();
    // The registry (its URL: the name alone would hold its host too) and the reason.
    assert!(error.contains(&format!("pushing {name}: ")), "{error}");
    assert!(
        error.contains("(http://127.0.0.1:1/v2/nodekit/refused/"),
        "{error}"
    );
    assert!(error.contains("Connection refused"), "{error}");
    assert_eq!(
        stored_digest(&name),
        Some(before),
        "the name still points at the first image"
    );
    daemon.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &name]);
}

#[tokio::test]
async fn store_false_pushes_without_naming_the_image_on_the_node() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("push-no-store").await;
    let name = format!("{}/nodekit/no-store:{}", env.registry, std::process::id());
    let attrs = [("name", name.as_str()), ("store", "false")];
    let (result, updates) = run_build(&daemon, build_of("nostore", &[("registry", &attrs)])).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    assert_eq!(registry_digest(&name), Some(digest.clone()), "pushed");
    assert_eq!(stored_digest(&name), None, "not named on the node");
    let statuses = status_names(&updates);
    assert!(
        !statuses.iter().any(|s| s.starts_with("naming to")),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&format!("pushing manifest for {name}@{digest}")),
        "{statuses:?}"
    );
    // Each blob has its own line: the new layer uploaded, the base's found or sent.
    let blobs = statuses.iter().filter(|s| s.starts_with("sha256:")).count();
    assert!(blobs >= 3, "config and at least two layers: {statuses:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn two_outputs_in_one_build_both_happen() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("push-two-outputs").await;
    let local = format!("nodekit.test/two-outputs:{}", std::process::id());
    let pushed = format!(
        "{}/nodekit/two-outputs:{}",
        env.registry,
        std::process::id()
    );
    let outputs: [(&str, &[(&str, &str)]); 2] = [
        ("image", &[("name", local.as_str()), ("unpack", "false")]),
        ("registry", &[("name", pushed.as_str())]),
    ];
    let (result, updates) = run_build(&daemon, build_of("two", &outputs)).await;
    result.unwrap();
    let stored = stored_digest(&local).expect("stored uncompressed on the node");
    // Each exporter's step shows its work as buildkitd's does.
    let statuses = status_names(&updates);
    for expected in [
        "exporting layers".to_string(),
        format!("exporting manifest {stored}"),
        format!("naming to {local}"),
        format!("naming to {pushed}"),
        "pushing layers".to_string(),
    ] {
        assert!(statuses.contains(&expected), "{expected}: {statuses:?}");
    }
    assert!(statuses
        .iter()
        .any(|s| s.starts_with("exporting config sha256:")));
    // unpack=false changes nothing here (images are unpacked either way): said, not ignored.
    let warnings: Vec<String> = updates
        .iter()
        .flat_map(|u| u.warnings.iter())
        .map(|w| String::from_utf8_lossy(&w.short).into_owned())
        .collect();
    assert_eq!(
        warnings,
        ["image exporter: unpack=false has no effect: nodekitd's images are always unpacked"]
    );
    let in_registry = registry_digest(&pushed).expect("pushed, gzip");
    assert_ne!(
        stored, in_registry,
        "the node's copy is uncompressed, the pushed one gzip"
    );
    assert!(stored_digest(&pushed).is_some());
    daemon.stop().await;
    for name in [&local, &pushed] {
        ctr(env, &["images", "rm", name]);
    }
}

/// `name-canonical` stores `repository@digest` beside each name; `dangling-name-prefix` names
/// a nameless image `<prefix>@<digest>`.
#[tokio::test]
async fn digest_names_are_stored_as_asked() {
    let daemon = TestDaemon::start("push-digest-names").await;
    let name = format!("nodekit.test/canonical:{}", std::process::id());
    let attrs = [("name", name.as_str()), ("name-canonical", "true")];
    let (result, _) = run_build(&daemon, build_of("canonical", &[("image", &attrs)])).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let canonical = format!("nodekit.test/canonical@{digest}");
    assert_eq!(stored_digest(&canonical), Some(digest.clone()));
    assert_eq!(stored_digest(&name), Some(digest));

    let attrs = [("dangling-name-prefix", "nodekit-dangling")];
    let (result, _) = run_build(&daemon, build_of("dangling", &[("image", &attrs)])).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let dangling = format!("nodekit-dangling@{digest}");
    assert_eq!(stored_digest(&dangling), Some(digest));
    daemon.stop().await;
    for image in [&name, &canonical, &dangling] {
        ctr(TestEnv::get(), &["images", "rm", image]);
    }
}
