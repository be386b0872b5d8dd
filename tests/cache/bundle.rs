//! The cache between nodes: two daemons with their own roots (so their own worker IDs) and
//! their own containerd namespaces compute the same keys, and a bundle exported from one and
//! imported into the other makes the other's first build all cached.

use std::path::Path;

use nodekit_test_support::{ctr, TestDaemon, TestEnv};

use crate::common::{build_dockerfile, context, unique};
use crate::nodes::{
    change_a_txt, node, regular_keys, remove_node, six_steps, target, two_thousand_files,
    AFTER_CHANGE,
};
use crate::usage::disk_usage;

/// The same step keyed on two daemons that share nothing but containerd (roots, worker IDs,
/// namespaces differ) has the same key: keys are content, not places.
#[tokio::test]
async fn two_nodes_compute_the_same_keys() {
    let env = TestEnv::get();
    let nonce = unique();
    let dockerfile = format!(
        "FROM {}\nRUN echo {nonce} > /n\nCOPY a.txt /a.txt\n",
        env.registry_image
    );
    let dir = context(&dockerfile, &[("a.txt", "a\n")]);
    let (ns_a, ns_b) = (format!("nk-keys-a-{nonce}"), format!("nk-keys-b-{nonce}"));
    let a = node("keys-a", &ns_a).await;
    let b = node("keys-b", &ns_b).await;
    for daemon in [&a, &b] {
        build_dockerfile(daemon, dir.path(), &[], None)
            .await
            .result
            .expect("the build");
    }
    let keys = regular_keys(&a).await;
    assert_eq!(keys.len(), 2, "one record per step: {keys:?}");
    assert_eq!(keys, regular_keys(&b).await);
    remove_node(a, &ns_a).await;
    remove_node(b, &ns_b).await;
}

/// Node A builds and exports its cache; every damaged copy of the bundle is refused by node B
/// with nothing imported; the bundle itself makes B's first build all cached with A's image
/// digest; importing it again changes nothing; a one-file change re-runs only what reads it.
#[tokio::test]
async fn a_bundle_carries_the_cache_to_another_node() {
    let env = TestEnv::get();
    let nonce = unique();
    let dir = context(&six_steps(&env.registry_image), &[("a.txt", &nonce)]);
    two_thousand_files(dir.path());
    let (ns_a, ns_b) = (
        format!("nk-bundle-a-{nonce}"),
        format!("nk-bundle-b-{nonce}"),
    );
    let image = format!("nodekit.test/bundle:{nonce}");
    let a = node("bundle-a", &ns_a).await;
    let b = node("bundle-b", &ns_b).await;

    let built_a = build_dockerfile(&a, dir.path(), &[], Some(&image)).await;
    let digest_a = built_a.result.expect("node A's build")["containerimage.digest"].clone();
    let bundle = tempfile::tempdir().unwrap();
    let path = bundle.path().join("cache.bundle");
    let exported = nodekit::cache::export(&target(&a), Default::default(), Some(&path))
        .await
        .expect("the export");
    assert!(exported.skipped.is_empty(), "{:?}", exported.skipped);
    assert!(exported.records >= 5, "{exported:?}");

    refuse_damaged_copies(&b, &path).await;

    let imported = nodekit::cache::import(&target(&b), Some(&path))
        .await
        .expect("the import");
    assert_eq!(imported.records_imported, exported.records, "{imported:?}");
    let built_b = build_dockerfile(&b, dir.path(), &[], Some(&image)).await;
    let digest_b =
        built_b.result.as_ref().expect("node B's build")["containerimage.digest"].clone();
    assert_eq!(
        built_b.ran(),
        Vec::<String>::new(),
        "every step cached on B"
    );
    assert_eq!(digest_b, digest_a, "the same image");

    let again = nodekit::cache::import(&target(&b), Some(&path))
        .await
        .expect("the second import");
    assert_eq!(
        (
            again.records_imported,
            again.records_present,
            again.blobs_written
        ),
        (0, exported.records, 0),
        "{again:?}"
    );

    change_a_txt(dir.path());
    let changed = build_dockerfile(&b, dir.path(), &[], None).await;
    changed.result.as_ref().expect("the changed build");
    assert_eq!(changed.ran(), AFTER_CHANGE);
    remove_node(a, &ns_a).await;
    remove_node(b, &ns_b).await;
}

/// Copies of the bundle cut short, with a flipped byte, or claiming a future format version are
/// each refused, and B's cache stays empty.
async fn refuse_damaged_copies(b: &TestDaemon, path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let signature = cachestore::bundle::MAGIC.len();
    let mut newer = bytes.clone();
    newer[signature + 1] += 1;
    let mut flipped = bytes.clone();
    flipped[bytes.len() * 2 / 3] ^= 0x01;
    let mut copies = vec![("newer", newer, "newer"), ("flipped", flipped, "corrupt")];
    for cut in [10, signature + 2, bytes.len() / 2, bytes.len() - 1] {
        copies.push(("cut", bytes[..cut].to_vec(), ""));
    }
    let dir = tempfile::tempdir().unwrap();
    for (what, copy, says) in copies {
        let damaged = dir.path().join(what);
        std::fs::write(&damaged, &copy).unwrap();
        let error = nodekit::cache::import(&target(b), Some(&damaged))
            .await
            .expect_err(&format!(
                "a {what} bundle of {} bytes is refused",
                copy.len()
            ));
        let message = format!("{error:#}");
        assert!(
            message.contains(says) && message.contains("nothing was imported"),
            "{what}: {message}"
        );
        assert!(
            disk_usage(b, &[]).await.is_empty(),
            "{what}: nothing imported"
        );
    }
}

/// A client that goes away in the middle of an export leaves nothing behind (the export's
/// lease goes with it) and the next export is whole.
#[tokio::test]
async fn an_export_the_client_abandons_leaves_nothing() {
    use nodekit_proto::nodekit::cache::v1::cache_bundle_client::CacheBundleClient;
    use nodekit_proto::nodekit::cache::v1::ExportRequest;

    let env = TestEnv::get();
    let nonce = unique();
    // 32 MiB of noise: more than the channels and HTTP/2 windows between daemon and client hold.
    let dockerfile = format!(
        "FROM {}\nRUN head -c 33554432 /dev/urandom > /noise && echo {nonce}\n",
        env.registry_image
    );
    let dir = context(&dockerfile, &[]);
    let namespace = format!("nk-abandon-{nonce}");
    let daemon = node("abandon", &namespace).await;
    build_dockerfile(&daemon, dir.path(), &[], None)
        .await
        .result
        .expect("the build");

    let mut stream = CacheBundleClient::new(daemon.channel().await)
        .export(ExportRequest::default())
        .await
        .expect("the export starts")
        .into_inner();
    stream.message().await.expect("a first chunk");
    let export_leases = || {
        let leases = ctr(env, &["-n", &namespace, "leases", "ls", "-q"]);
        String::from_utf8_lossy(&leases.stdout)
            .lines()
            .filter(|l| l.contains("cache-export"))
            .count()
    };
    // The client reads no further, so the export waits, holding its lease.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(export_leases(), 1, "the export in progress holds a lease");
    drop(stream);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while export_leases() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(export_leases(), 0, "the abandoned export's lease is gone");

    let bundle = tempfile::tempdir().unwrap();
    let path = bundle.path().join("again.bundle");
    let again = nodekit::cache::export(&target(&daemon), Default::default(), Some(&path))
        .await
        .expect("the next export");
    assert_eq!((again.records, again.skipped.len()), (1, 0));
    assert!(std::fs::metadata(&path).unwrap().len() > 32 << 20);
    remove_node(daemon, &namespace).await;
}

/// `nodekit cache export --build REF`: the records one build used, none of another's; the
/// other node then builds that one all cached. An unknown build is refused by name.
#[tokio::test]
async fn one_builds_records_travel_alone() {
    use nodekit_proto::nodekit::cache::v1::ExportRequest;

    let env = TestEnv::get();
    let nonce = unique();
    let (ns_a, ns_b) = (format!("nk-one-a-{nonce}"), format!("nk-one-b-{nonce}"));
    let a = node("one-build-a", &ns_a).await;
    let b = node("one-build-b", &ns_b).await;
    let wanted = context(
        &format!(
            "FROM {}\nRUN echo wanted {nonce} > /w\nRUN cat /w > /w2\n",
            env.registry_image
        ),
        &[],
    );
    let other = context(
        &format!("FROM {}\nRUN echo other {nonce} > /o\n", env.registry_image),
        &[],
    );
    let wanted_ref = format!("wanted-{nonce}");
    crate::common::build_dockerfile_with(&a, wanted.path(), &[], None, |request| {
        request.build_ref = wanted_ref.clone()
    })
    .await
    .result
    .expect("the wanted build");
    build_dockerfile(&a, other.path(), &[], None)
        .await
        .result
        .expect("the other build");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.bundle");
    let request = |build_ref: &str| ExportRequest {
        build_ref: build_ref.to_string(),
        ..Default::default()
    };
    let unknown = nodekit::cache::export(&target(&a), request("nosuch"), Some(&path)).await;
    let message = format!("{:#}", unknown.expect_err("an unknown build"));
    assert!(message.contains("no recent build nosuch"), "{message}");
    let exported = nodekit::cache::export(&target(&a), request(&wanted_ref), Some(&path))
        .await
        .expect("the export");
    assert_eq!(
        exported.records, 2,
        "the wanted build's two steps: {exported:?}"
    );

    nodekit::cache::import(&target(&b), Some(&path))
        .await
        .expect("the import");
    let built = build_dockerfile(&b, wanted.path(), &[], None).await;
    built.result.as_ref().expect("B's build");
    assert_eq!(built.ran(), Vec::<String>::new(), "cached on B");
    let ran = build_dockerfile(&b, other.path(), &[], None).await.ran();
    assert_eq!(
        ran.len(),
        1,
        "the other build's step was not carried: {ran:?}"
    );
    remove_node(a, &ns_a).await;
    remove_node(b, &ns_b).await;
}
