//! Foreign-platform steps: through the kernel's binfmt_misc handler when one with the F flag
//! is registered, else through the bundled static qemu, else a clear error; and a
//! multi-platform build stored as an image index whose every platform runs.

use nodekit_proto::moby::buildkit::v1::control_client::ControlClient;
use nodekit_proto::moby::buildkit::v1::ListWorkersRequest;
use nodekit_test_support::{TestDaemon, TestEnv};

use crate::binfmt::{Binfmt, MACHINE};
use crate::common::{build_dockerfile, context, run_for_platform, unique, Built};
use crate::store::{content_json, content_labels, image_target, layer_paths};

fn arm64_dockerfile() -> String {
    // `$(cat /arch)` makes the shell start another arm64 program: only the kernel's handler
    // can run that. `[ -e ... ]` shows whether the bundled emulator is in the container.
    format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE; uname -m > /arch; if [ -e /dev/.buildkit_qemu_emulator ]; then echo through-bundled-qemu; else echo through-kernel $(cat /arch); fi\n",
        TestEnv::get().local_image
    )
}

/// A fresh (never cached) arm64 build of the context in `dir`, exported as `image`.
async fn build_arm64(daemon: &TestDaemon, dir: &std::path::Path, image: &str) -> Built {
    let nonce = unique();
    let args = [("NONCE", nonce.as_str()), ("=platform", "linux/arm64")];
    let built = build_dockerfile(daemon, dir, &args, Some(image)).await;
    if let Err(error) = &built.result {
        panic!("arm64 build: {error}");
    }
    built
}

#[tokio::test]
async fn arm64_steps_run_through_binfmt_misc_and_else_through_the_bundled_qemu() {
    let _machine = MACHINE.lock().await;
    let mut binfmt = Binfmt::take();
    let daemon = TestDaemon::start("multiarch-run").await;
    let dir = context(&arm64_dockerfile(), &[]);
    let image = "nodekit.test/node-arm64:1";

    binfmt.enable_arm64();
    let built = build_arm64(&daemon, dir.path(), image).await;
    assert!(
        built.logs().contains("through-kernel aarch64"),
        "{}",
        built.logs()
    );
    let arch = run_for_platform(image, Some("linux/arm64"), &["cat", "/arch"]);
    assert_eq!(arch, "aarch64\n");

    binfmt.disable_arm64();
    let built = build_arm64(&daemon, dir.path(), image).await;
    assert!(
        built.logs().contains("through-bundled-qemu"),
        "{}",
        built.logs()
    );
    // Reading the image needs the kernel's handler again.
    binfmt.enable_arm64();
    assert_eq!(
        run_for_platform(image, Some("linux/arm64"), &["cat", "/arch"]),
        "aarch64\n"
    );
    // The emulator and its mount point never enter the image.
    let manifest = content_json(&image_target(image));
    let paths = layer_paths(&manifest);
    assert!(paths.iter().any(|p| p == "arch"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("qemu")), "{paths:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn without_any_emulator_a_foreign_step_fails_saying_what_to_install() {
    let _machine = MACHINE.lock().await;
    let mut binfmt = Binfmt::take();
    binfmt.disable_arm64();
    let empty = tempfile::tempdir().unwrap();
    let qemu_dir = empty.path().to_path_buf();
    let root = tempfile::tempdir().unwrap().keep();
    let daemon = TestDaemon::start_configured("multiarch-none", root, |config| {
        config.worker.emulation.qemu_dir = qemu_dir;
    })
    .await;
    let platforms = worker_platforms(&daemon).await;
    assert_eq!(platforms, [nodekitd::oci::Platform::native().to_string()]);

    let dir = context(&arm64_dockerfile(), &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str()), ("=platform", "linux/arm64")];
    let built = build_dockerfile(&daemon, dir.path(), &args, None).await;
    let error = built.result.expect_err("no emulator, no arm64 step");
    assert!(error.contains("Dockerfile:3"), "{error}");
    assert!(error.contains("linux/arm64"), "{error}");
    assert!(error.contains("qemu-user-static"), "{error}");
    assert!(
        error.contains(&empty.path().display().to_string()),
        "{error}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn workers_list_the_platforms_the_node_can_run() {
    let _machine = MACHINE.lock().await;
    let mut binfmt = Binfmt::take();
    binfmt.disable_arm64();
    let daemon = TestDaemon::start("multiarch-workers").await;
    // qemu-user-static is installed: arm64 runs through it even without a handler.
    let platforms = worker_platforms(&daemon).await;
    assert_eq!(platforms[0], nodekitd::oci::Platform::native().to_string());
    assert!(
        platforms.contains(&"linux/arm64".to_string()),
        "{platforms:?}"
    );
    daemon.stop().await;
}

async fn worker_platforms(daemon: &TestDaemon) -> Vec<String> {
    let mut control = ControlClient::new(daemon.channel().await);
    let workers = control
        .list_workers(ListWorkersRequest::default())
        .await
        .expect("ListWorkers")
        .into_inner()
        .record;
    workers[0]
        .platforms
        .iter()
        .map(|p| match p.variant.as_str() {
            "" => format!("{}/{}", p.os, p.architecture),
            v => format!("{}/{}/{v}", p.os, p.architecture),
        })
        .collect()
}

#[tokio::test]
async fn a_two_platform_build_is_an_index_whose_every_platform_runs() {
    let _machine = MACHINE.lock().await;
    let mut binfmt = Binfmt::take();
    binfmt.enable_arm64();
    let daemon = TestDaemon::start("multiarch-index").await;
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE; uname -m > /arch\nCMD [\"cat\", \"/arch\"]\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let image = "nodekit.test/node-index:1";
    let nonce = unique();
    let args = [
        ("NONCE", nonce.as_str()),
        ("=platform", "linux/amd64,linux/arm64"),
    ];
    let built = build_dockerfile(&daemon, dir.path(), &args, Some(image)).await;
    let response = built.result.clone().expect("a two-platform build");
    let steps: Vec<String> = built.steps().into_iter().map(|v| v.name).collect();
    assert!(
        steps.iter().any(|s| s.starts_with("[linux/arm64 3/4] RUN")),
        "{steps:?}"
    );

    let index_digest = &response["containerimage.digest"];
    let index = content_json(index_digest);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let record = image_target(image);
    assert_eq!(&record, index_digest);

    // The node's platform is unpacked: its config names its snapshot chain.
    let native = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == nodekitd::oci::Platform::native().architecture)
        .expect("the native manifest");
    let manifest = content_json(native["digest"].as_str().unwrap());
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert!(
        content_labels(config_digest).contains("containerd.io/gc.ref.snapshot.overlayfs"),
        "the native platform is not unpacked"
    );

    for (platform, arch) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        assert_eq!(
            run_for_platform(image, Some(platform), &[]),
            format!("{arch}\n")
        );
    }
    daemon.stop().await;
}
