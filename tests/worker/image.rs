use nodekit_test_support::{ctr, TestEnv};
use nodekitd::oci::Platform;
use nodekitd::worker::{Compression, ImageWrite, ManifestFormat, NewLayer};

use crate::common::Step;

/// Runs a step, commits it, writes an image and runs that image the way the kubelet would.
async fn build_and_run(test: &str, name: &str, compression: Compression, format: ManifestFormat) {
    let env = TestEnv::get();
    let step = Step::on_busybox(test).await;
    let script = format!("echo hi from {test} > /hello; rm /etc/group; echo done");
    let (outcome, output) = step.run(step.request(&script)).await;
    assert_eq!((outcome.exit_code, output.stdout.as_str()), (0, "done\n"));
    let layer = step
        .worker
        .commit_layer(&step.lease, step.rootfs.clone(), compression)
        .await
        .expect("commit");
    assert_eq!(layer.parent, step.base.chain_id());
    let written = step
        .worker
        .write_image(
            &step.lease,
            &ImageWrite {
                names: vec![name.to_string()],
                base: Some(&step.base),
                platform: Platform::native(),
                layers: vec![NewLayer {
                    layer: layer.clone(),
                    created_by: format!("RUN {script}"),
                }],
                config: None,
                full_config: None,
                format,
                annotations: Default::default(),
                base_layers: None,
            },
        )
        .await
        .expect("write image");
    assert_eq!(written.chain_id.as_deref(), Some(layer.chain_id.as_str()));
    step.lease.release().await.expect("release");

    // Mount stubs (/etc/hosts, /proc...) stay out of the layer; the deletion is a whiteout.
    let check = "cat /hello; test -e /etc/group && echo group-still-there; \
                 test -s /etc/hosts && echo hosts-leaked; test -s /etc/resolv.conf && echo resolv-leaked; true";
    let id = format!("{test}-{}", std::process::id());
    let run = ctr(env, &["run", "--rm", name, &id, "sh", "-c", check]);
    assert!(
        run.status.success(),
        "ctr run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("hi from {test}\n")
    );
    let history = ctr(env, &["images", "check"]);
    let line = String::from_utf8_lossy(&history.stdout)
        .lines()
        .find(|l| l.starts_with(name))
        .map(String::from)
        .unwrap_or_default();
    assert!(line.contains("complete"), "image not complete: {line}");
}

#[tokio::test]
async fn a_committed_step_becomes_an_image_the_node_can_run() {
    build_and_run(
        "image-gzip",
        "nodekit.test/hello:latest",
        Compression::Gzip,
        ManifestFormat::Oci,
    )
    .await;
}

#[tokio::test]
async fn zstd_and_docker_media_types_on_request() {
    build_and_run(
        "image-zstd",
        "nodekit.test/hello:zstd",
        Compression::Zstd,
        ManifestFormat::Oci,
    )
    .await;
    build_and_run(
        "image-docker",
        "nodekit.test/hello:docker",
        Compression::Uncompressed,
        ManifestFormat::Docker,
    )
    .await;
}

/// A layer compressed once is not compressed again: the copy is found by the label on the
/// uncompressed layer (a later push or cache export sends the same blob).
#[tokio::test]
async fn a_layer_is_compressed_once() {
    let env = TestEnv::get();
    let step = Step::on_busybox("compress-once").await;
    let script = format!("echo {} > /noise", std::process::id());
    let (outcome, _) = step.run(step.request(&script)).await;
    assert_eq!(outcome.exit_code, 0);
    let layer = step
        .worker
        .commit_layer(&step.lease, step.rootfs.clone(), Compression::Uncompressed)
        .await
        .expect("commit");
    step.worker
        .ensure_layer_blob(&step.lease, &layer.chain_id, &layer.blob)
        .await
        .expect("the uncompressed layer");
    let compress = || {
        step.worker
            .compress_layer(&step.lease, &layer.blob, Compression::Gzip)
    };
    let first = compress().await.expect("compressing");
    let listing = ctr(env, &["content", "ls"]);
    let label = format!("containerd.io/gc.ref.content.nodekit.gzip={}", first.digest);
    assert!(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .any(|l| l.starts_with(&layer.blob.digest) && l.contains(&label)),
        "the layer names its gzip copy"
    );
    // Point the label at another blob the store has: the next call answers with it.
    let other = step.base.layers()[0].digest().to_string();
    let relabel = format!("containerd.io/gc.ref.content.nodekit.gzip={other}");
    let labelled = ctr(env, &["content", "label", &layer.blob.digest, &relabel]);
    assert!(labelled.status.success());
    assert_eq!(compress().await.expect("compressing again").digest, other);
    step.lease.release().await.expect("release");
}
