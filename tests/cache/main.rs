//! The build cache against the real containerd: unchanged rebuilds run nothing, a changed file
//! re-runs only what reads it, the cache survives restarts, heals when containerd loses what it
//! names, and concurrent identical builds run each step once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

mod bundle;
mod common;
mod crash;
mod damaged_index;
mod kill_loop;
mod nodes;
mod process;
mod proxy;
mod remote;
mod usage;

use common::{build_dockerfile, context, run_in_image, unique};
use nodekit_test_support::{ctr, TestDaemon, TestEnv};

/// Every RUN leaves a line in a cache mount (whose contents never enter keys), so a later
/// build can count how often the steps really ran.
fn counting_dockerfile(base: &str) -> String {
    format!(
        "FROM {base}
ARG ID
RUN --mount=type=cache,id=runs-$ID,target=/runs sh -c 'echo first >> /runs/log; date +%s%N > /stamp'
COPY a.txt /a.txt
RUN --mount=type=cache,id=runs-$ID,target=/runs sh -c 'echo second >> /runs/log; cat /stamp /a.txt > /out'
COPY b.txt /b.txt
"
    )
}

/// How many times each counted step ran, read through a fresh step.
async fn run_log(daemon: &TestDaemon, id: &str) -> String {
    let env = TestEnv::get();
    let reader = format!(
        "FROM {}\nARG ID\nARG NONCE\nRUN --mount=type=cache,id=runs-$ID,target=/runs echo $NONCE && cat /runs/log\n",
        env.local_image
    );
    let dir = context(&reader, &[]);
    let nonce = unique();
    let built = build_dockerfile(daemon, dir.path(), &[("ID", id), ("NONCE", &nonce)], None).await;
    built.result.as_ref().expect("reading the run log");
    built.logs().replace(&format!("{nonce}\n"), "")
}

#[tokio::test]
async fn an_unchanged_rebuild_runs_nothing_even_after_a_restart() {
    let daemon = TestDaemon::start("cache-rebuild").await;
    let root = daemon.root.clone();
    let id = unique();
    let dir = context(
        &counting_dockerfile(&TestEnv::get().local_image),
        &[("a.txt", "a\n"), ("b.txt", "b\n")],
    );
    let image = "nodekit.test/cache-rebuild:1";
    let first = build_dockerfile(&daemon, dir.path(), &[("ID", &id)], Some(image)).await;
    first.result.as_ref().expect("first build");
    assert_eq!(first.ran().len(), 4, "{:?}", first.ran());
    let stamp = run_in_image(image, &["cat", "/stamp"]);

    let second = build_dockerfile(&daemon, dir.path(), &[("ID", &id)], Some(image)).await;
    second.result.as_ref().expect("second build");
    assert_eq!(second.ran(), Vec::<String>::new(), "every step cached");
    assert_eq!(run_in_image(image, &["cat", "/stamp"]), stamp);
    // Layers keep the time they were made, so the very same image is written again.
    let digest =
        |built: &common::Built| built.result.as_ref().unwrap()["containerimage.digest"].clone();
    assert_eq!(
        digest(&second),
        digest(&first),
        "a cached rebuild is the same image"
    );
    daemon.stop().await;

    let daemon = TestDaemon::start_in("cache-rebuild", root).await;
    let third = build_dockerfile(&daemon, dir.path(), &[("ID", &id)], Some(image)).await;
    third.result.as_ref().expect("build after a restart");
    assert_eq!(third.ran(), Vec::<String>::new(), "cached across a restart");
    assert_eq!(run_in_image(image, &["cat", "/stamp"]), stamp);
    assert_eq!(
        digest(&third),
        digest(&first),
        "the same image after a restart"
    );
    assert_eq!(
        run_log(&daemon, &id).await,
        "first\nsecond\n",
        "each RUN ran once"
    );

    let uncached = [("ID", id.as_str()), ("=no-cache", "")];
    let fresh = build_dockerfile(&daemon, dir.path(), &uncached, Some(image)).await;
    fresh.result.as_ref().expect("a build with no-cache");
    assert_eq!(
        fresh.ran().len(),
        4,
        "no-cache runs every step: {:?}",
        fresh.ran()
    );
    assert_ne!(run_in_image(image, &["cat", "/stamp"]), stamp);
    assert_ne!(digest(&fresh), digest(&first));
    daemon.stop().await;
}

#[tokio::test]
async fn a_changed_file_reruns_only_the_steps_that_read_it() {
    let daemon = TestDaemon::start("cache-one-file").await;
    let id = unique();
    let dockerfile = counting_dockerfile(&TestEnv::get().local_image);
    let dir = context(&dockerfile, &[("a.txt", "a\n"), ("b.txt", "b\n")]);
    build_dockerfile(&daemon, dir.path(), &[("ID", &id)], None)
        .await
        .result
        .expect("first build");

    std::fs::write(dir.path().join("b.txt"), "b changed\n").expect("editing b.txt");
    let after_b = build_dockerfile(&daemon, dir.path(), &[("ID", &id)], None).await;
    after_b.result.as_ref().expect("build after editing b.txt");
    assert_eq!(
        after_b.ran().len(),
        1,
        "only COPY b.txt: {:?}",
        after_b.ran()
    );
    assert!(after_b.ran()[0].contains("COPY b.txt"));

    std::fs::write(dir.path().join("a.txt"), "a changed\n").expect("editing a.txt");
    let after_a = build_dockerfile(&daemon, dir.path(), &[("ID", &id)], None).await;
    after_a.result.as_ref().expect("build after editing a.txt");
    let ran = after_a.ran();
    assert_eq!(ran.len(), 3, "COPY a.txt and what follows: {ran:?}");
    assert!(ran[0].contains("COPY a.txt"), "{ran:?}");
    assert_eq!(run_log(&daemon, &id).await, "first\nsecond\nsecond\n");
    daemon.stop().await;
}

#[tokio::test]
async fn concurrent_identical_builds_run_each_step_once() {
    let daemon = TestDaemon::start("cache-concurrent").await;
    let id = unique();
    let dockerfile = format!(
        "FROM {}\nARG ID\nRUN --mount=type=cache,id=runs-$ID,target=/runs sh -c 'echo ran >> /runs/log; sleep 1; date +%s%N > /stamp'\n",
        TestEnv::get().local_image
    );
    // Two clients, two sessions, the same files.
    let (one, two) = (context(&dockerfile, &[]), context(&dockerfile, &[]));
    let args = [("ID", id.as_str())];
    let (first, second) = tokio::join!(
        build_dockerfile(
            &daemon,
            one.path(),
            &args,
            Some("nodekit.test/cache-concurrent:1")
        ),
        build_dockerfile(
            &daemon,
            two.path(),
            &args,
            Some("nodekit.test/cache-concurrent:2")
        ),
    );
    first.result.as_ref().expect("first build");
    second.result.as_ref().expect("second build");
    assert_eq!(run_log(&daemon, &id).await, "ran\n", "the RUN ran once");
    assert_eq!(
        run_in_image("nodekit.test/cache-concurrent:1", &["cat", "/stamp"]),
        run_in_image("nodekit.test/cache-concurrent:2", &["cat", "/stamp"]),
    );
    daemon.stop().await;
}

#[tokio::test]
async fn lost_snapshots_and_base_image_heal_by_running_again() {
    let daemon = TestDaemon::start("cache-heal").await;
    let env = TestEnv::get();
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /nonce && head -c 16 /dev/urandom | od -An -tx1 > /stamp\nRUN cat /stamp > /copy\n",
        env.registry_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let image = "nodekit.test/cache-heal:1";
    let args = [("NONCE", nonce.as_str())];
    build_dockerfile(&daemon, dir.path(), &args, Some(image))
        .await
        .result
        .expect("first build");
    let stamp = run_in_image(image, &["cat", "/stamp"]);

    // The kubelet's image GC and a manual prune, behind nodekit's back: the images go, then
    // the built snapshots are removed top down.
    let chains = image_chain_ids(image);
    assert!(ctr(env, &["images", "rm", image]).status.success());
    assert!(ctr(env, &["images", "rm", &env.registry_image])
        .status
        .success());
    for chain in chains.iter().rev().take(2) {
        let removed = ctr(env, &["snapshots", "rm", chain]);
        assert!(
            removed.status.success(),
            "{}",
            String::from_utf8_lossy(&removed.stderr)
        );
    }

    let healed = build_dockerfile(&daemon, dir.path(), &args, Some(image)).await;
    healed
        .result
        .as_ref()
        .expect("the build after the loss succeeds");
    assert_eq!(
        healed.ran().len(),
        2,
        "both RUNs ran again: {:?}",
        healed.ran()
    );
    assert_ne!(run_in_image(image, &["cat", "/stamp"]), stamp);
    let again = build_dockerfile(&daemon, dir.path(), &args, Some(image)).await;
    again.result.as_ref().expect("a third build");
    assert_eq!(again.ran(), Vec::<String>::new(), "cached again");
    // The environment keeps the registry image out of the store.
    ctr(env, &["images", "rm", &env.registry_image]);
    daemon.stop().await;
}

/// The chain IDs of `image`'s layers (bottom first), from its config in the store.
fn image_chain_ids(image: &str) -> Vec<String> {
    let env = TestEnv::get();
    let output = ctr(env, &["images", "ls", &format!("name=={image}")]);
    assert!(output.status.success());
    let config = ctr(env, &["content", "get", &config_digest(image)]);
    let config: serde_json::Value =
        serde_json::from_slice(&config.stdout).expect("the image config is JSON");
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    nodekitd::oci::chain_ids(&diff_ids)
}

fn config_digest(image: &str) -> String {
    let env = TestEnv::get();
    let listing = ctr(env, &["images", "ls"]);
    let text = String::from_utf8_lossy(&listing.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(image))
        .expect("the image is listed");
    let manifest_digest = line.split_whitespace().nth(2).expect("a digest column");
    let manifest = ctr(env, &["content", "get", manifest_digest]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest.stdout).expect("the manifest is JSON");
    manifest["config"]["digest"]
        .as_str()
        .expect("a config digest")
        .to_string()
}
