//! Dockerfile builds pushed (`push=true`) and looked at from outside: skopeo reads the manifest,
//! config and layers a TLS registry (its CA the daemon's registry configuration names) holds,
//! and another containerd namespace pulls the image and runs it; a second push after a
//! one-file change uploads only the new layer and config (a proxy counts the uploads); two
//! platforms push as one index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_test_support::{
    ctr, AuthRegistry, CountingProxy, ScratchNamespace, SeenRequest, TestCa, TestDaemon, TestEnv,
};
use nodekitd::worker::{HostConfig, RegistryHosts};
use serde_json::{json, Value};

use crate::helpers::{run_build, skopeo_config, skopeo_raw_manifest};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A build context: the Dockerfile and `files`.
fn context(dockerfile: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

/// A dockerfile.v0 build of `dir` on the test's local busybox, pushed to `name`, with the
/// frontend's `options` and the client's `docker_config`.
fn pushed_build(
    dir: &Path,
    name: &str,
    options: &[(&str, &str)],
    docker_config: Option<PathBuf>,
) -> BuildRequest {
    let mut frontend_attrs = BTreeMap::from([(
        "build-arg:BASE".to_string(),
        TestEnv::get().local_image.clone(),
    )]);
    frontend_attrs.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let locals = BTreeMap::from([
        ("context".to_string(), dir.to_path_buf()),
        ("dockerfile".to_string(), dir.to_path_buf()),
    ]);
    let output = BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("push".to_string(), "true".to_string()),
    ]);
    BuildRequest {
        frontend: Some("dockerfile.v0".into()),
        frontend_attrs,
        services: SessionServices {
            locals,
            docker_config,
            ..Default::default()
        },
        exporters: vec![("image".into(), output)],
        ..Default::default()
    }
}

/// The image's manifest digest the build reported.
async fn push(daemon: &TestDaemon, request: BuildRequest) -> String {
    let (result, _) = run_build(daemon, request).await;
    result.unwrap()["containerimage.digest"].clone()
}

fn json_of(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).unwrap()
}

/// The host's architecture as OCI names it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

const TLS_APP: &str = "ARG BASE
FROM ${BASE}
ENV GREETING=hello-over-tls
COPY greeting.txt /greeting.txt
CMD [\"sh\", \"-c\", \"echo $GREETING; cat /greeting.txt\"]
";

/// A daemon trusting `ca` for `host` (HTTPS), as an operator configures it.
async fn trusting_daemon(test: &str, host: &str, ca: PathBuf) -> TestDaemon {
    let hosts = RegistryHosts {
        hosts: BTreeMap::from([(
            host.to_string(),
            HostConfig {
                http: Some(false),
                ca: vec![ca],
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    TestDaemon::start_with(test, |config| config.worker.registry_hosts = hosts).await
}

/// skopeo's certificate directory for a registry `ca` signed (it reads `*.crt` as CAs).
fn skopeo_cert_dir(dir: &Path, ca: &Path) -> PathBuf {
    let certs = dir.join("skopeo-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(ca, certs.join("ca.crt")).unwrap();
    certs
}

/// A containerd hosts directory saying `host` is HTTPS with a certificate `ca` signed (ctr
/// would take a loopback registry for plain HTTP, `--tlscacert` or not).
fn ctr_hosts_dir(dir: &Path, host: &str, ca: &Path) -> PathBuf {
    let hosts = dir.join("certs.d");
    std::fs::create_dir_all(hosts.join(host)).unwrap();
    let config = format!(
        "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = {:?}\n",
        ca.display().to_string()
    );
    std::fs::write(hosts.join(host).join("hosts.toml"), config).unwrap();
    hosts
}

#[tokio::test]
async fn a_push_to_a_tls_registry_is_read_back_and_runs_on_another_node() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new("push CA");
    let ca_cert = ca.write_cert(&pki.path().join("ca.pem"));
    let server = ca.server(pki.path(), "registry", &["127.0.0.1"]);
    let registry = AuthRegistry::start_tls("push-tls", "fay", "pw", &server, None);
    let credentials = registry.docker_config(&pki.path().join("config.json"), "pw");
    let daemon = trusting_daemon("push-tls", &registry.host, ca_cert.clone()).await;
    let target = format!("{}/team/app:1", registry.host);
    let dir = context(TLS_APP, &[("greeting.txt", b"from the context\n")]);
    let digest = push(
        &daemon,
        pushed_build(dir.path(), &target, &[], Some(credentials)),
    )
    .await;

    let certs = skopeo_cert_dir(pki.path(), &ca_cert);
    let options = ["--cert-dir", certs.to_str().unwrap(), "--creds", "fay:pw"];
    let image = format!("docker://{target}");
    let raw = skopeo_raw_manifest(&options, &image);
    assert_eq!(
        nodekitd::oci::sha256_digest(&raw),
        digest,
        "the built image"
    );
    let manifest = json_of(&raw);
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
    let layers = manifest["layers"].as_array().unwrap();
    assert!(
        layers.iter().all(|l| l["mediaType"] == GZIP_LAYER),
        "{manifest}"
    );
    let config = skopeo_config(&options, &image);
    assert_image_config(&config, layers.len());

    let node = ScratchNamespace::new("push-tls");
    let hosts_dir = ctr_hosts_dir(pki.path(), &registry.host, &ca_cert);
    let hosts_option = hosts_dir.to_str().unwrap();
    node.pull(&target, &["--hosts-dir", hosts_option, "--user", "fay:pw"]);
    assert_eq!(node.run(&target, &[]), "hello-over-tls\nfrom the context\n");
    drop(node);
    daemon.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &target]);
}

/// The config of [`TLS_APP`] as built: its command, environment and platform, a diff ID per
/// one of its `layers` and a history entry for each (the COPY last).
fn assert_image_config(config: &Value, layers: usize) {
    assert_eq!(
        config["config"]["Cmd"],
        json!(["sh", "-c", "echo $GREETING; cat /greeting.txt"])
    );
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.contains(&json!("GREETING=hello-over-tls")), "{env:?}");
    assert!(
        env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")),
        "the base's PATH stays: {env:?}"
    );
    assert_eq!(config["architecture"], host_architecture());
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        layers
    );
    let history = config["history"].as_array().unwrap();
    let with_layer: Vec<&Value> = history
        .iter()
        .filter(|h| h["empty_layer"] != json!(true))
        .collect();
    assert_eq!(with_layer.len(), layers, "{history:?}");
    let last = with_layer.last().unwrap()["created_by"].as_str().unwrap();
    assert!(last.contains("COPY greeting.txt /greeting.txt"), "{last}");
}

const LAYERED: &str = "ARG BASE
FROM ${BASE}
COPY big.bin /big.bin
COPY note.txt /note.txt
";

/// The digests of the blob uploads `requests` completed (`PUT .../blobs/uploads/...?digest=`),
/// checking that each was opened by a POST (not a mount) and none was left open.
fn uploaded(requests: &[SeenRequest]) -> BTreeSet<String> {
    let opened = requests
        .iter()
        .filter(|r| r.method == "POST" && r.target.contains("/blobs/uploads/"))
        .inspect(|r| assert!(!r.target.contains("mount="), "{r:?}"))
        .count();
    let digests: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/blobs/uploads/"))
        .map(|r| {
            let (_, digest) = r.target.split_once("digest=").expect("a completing PUT");
            let digest = digest.split('&').next().unwrap_or_default();
            digest.replace("%3A", ":").replace("%3a", ":")
        })
        .collect();
    assert_eq!(opened, digests.len(), "every upload opened is completed");
    let unique: BTreeSet<String> = digests.iter().cloned().collect();
    assert_eq!(unique.len(), digests.len(), "each blob once: {digests:?}");
    unique
}

/// The config and layer digests of a manifest.
fn blobs_of(manifest: &Value) -> (String, Vec<String>) {
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layers = manifest["layers"].as_array().unwrap();
    let layers = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string());
    (config, layers.collect())
}

#[tokio::test]
async fn a_second_push_after_a_one_file_change_uploads_only_the_new_layer_and_config() {
    let env = TestEnv::get();
    let proxy = CountingProxy::start(&env.registry);
    let daemon = TestDaemon::start("push-uploads").await;
    let repository = format!("nodekit/uploads-{}", rand::random::<u32>());
    let target = format!("{}/{repository}:1", proxy.host);
    let big: Vec<u8> = (0..1 << 20).map(|_| rand::random::<u8>()).collect();
    let dir = context(LAYERED, &[("big.bin", &big), ("note.txt", b"one\n")]);
    let read_back = || {
        let image = format!("docker://{}/{repository}:1", env.registry);
        blobs_of(&json_of(&skopeo_raw_manifest(
            &["--tls-verify=false"],
            &image,
        )))
    };

    push(&daemon, pushed_build(dir.path(), &target, &[], None)).await;
    let first = uploaded(&proxy.take());
    let (config, layers) = read_back();
    let everything: BTreeSet<String> = layers.iter().cloned().chain([config]).collect();
    assert_eq!(first, everything, "a new repository gets every blob");

    std::fs::write(dir.path().join("note.txt"), "two\n").unwrap();
    push(&daemon, pushed_build(dir.path(), &target, &[], None)).await;
    let second = uploaded(&proxy.take());
    let (new_config, new_layers) = read_back();
    let (new_layer, kept) = new_layers.split_last().unwrap();
    assert_eq!(
        kept,
        &layers[..layers.len() - 1],
        "the layers below are the same"
    );
    assert_ne!(new_layer, layers.last().unwrap());
    assert_eq!(
        second,
        BTreeSet::from([new_config, new_layer.clone()]),
        "only the changed layer and the config go up again"
    );
    daemon.stop().await;
    ctr(env, &["images", "rm", &target]);
}

const PER_PLATFORM: &str = "ARG BASE
FROM ${BASE}
ARG TARGETARCH
ENV ARCH=${TARGETARCH}
COPY note.txt /note.txt
";

#[tokio::test]
async fn a_two_platform_push_is_one_index_of_both_manifests() {
    let env = TestEnv::get();
    let daemon = TestDaemon::start("push-platforms").await;
    let repository = format!("{}/nodekit/platforms-{}", env.registry, std::process::id());
    let target = format!("{repository}:1");
    let dir = context(PER_PLATFORM, &[("note.txt", b"both\n")]);
    let platforms = [("platform", "linux/amd64,linux/arm64")];
    let digest = push(&daemon, pushed_build(dir.path(), &target, &platforms, None)).await;

    let tls = ["--tls-verify=false"];
    let raw = skopeo_raw_manifest(&tls, &format!("docker://{target}"));
    assert_eq!(
        nodekitd::oci::sha256_digest(&raw),
        digest,
        "the built index"
    );
    let index = json_of(&raw);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    let mut architectures = Vec::new();
    let mut base_layers = BTreeSet::new();
    for entry in manifests {
        let platform = &entry["platform"];
        assert_eq!(platform["os"], "linux", "{entry}");
        let architecture = platform["architecture"].as_str().unwrap();
        architectures.push(architecture.to_string());
        let by_digest = format!(
            "docker://{repository}@{}",
            entry["digest"].as_str().unwrap()
        );
        let manifest = json_of(&skopeo_raw_manifest(&tls, &by_digest));
        assert_eq!(manifest["mediaType"], entry["mediaType"]);
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        base_layers.insert(blobs_of(&manifest).1[0].clone());
        let config = skopeo_config(&tls, &by_digest);
        assert_eq!(config["architecture"], architecture);
        assert_eq!(config["os"], "linux");
        assert_eq!(config.get("variant"), platform.get("variant"));
        let env = config["config"]["Env"].as_array().unwrap();
        assert!(
            env.contains(&json!(format!("ARCH={architecture}"))),
            "{env:?}"
        );
    }
    architectures.sort();
    assert_eq!(architectures, ["amd64", "arm64"]);
    assert_eq!(base_layers.len(), 2, "each platform on its own base layer");
    daemon.stop().await;
    ctr(env, &["images", "rm", &target]);
}
