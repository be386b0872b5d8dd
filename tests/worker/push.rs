//! The push side of the registry client against the loopback registries (the test env's, and
//! one with basic auth): a blob is streamed from containerd's content store once (HEAD finds it
//! the second time) and read back identical; it is mounted into another repository of the
//! registry when its source annotation, or the content-store label a pull leaves, names the
//! repository it came from; a manifest put by tag resolves by that tag; a registry with auth
//! refuses a push without credentials, naming itself, and takes it with the daemon's.

use std::process::{Command, Output};

use nodekit_test_support::{ctr, AuthRegistry, TestEnv};
use nodekitd::worker::images::{
    normalize_reference, NoClient, Pushed, Pusher, RegistryHosts, SOURCE_ANNOTATION,
};
use nodekitd::worker::{Descriptor, Lease, RegistryOperation, Worker, WorkerError};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `bytes` written to containerd's content store (under `lease`), described.
async fn stored_blob(
    worker: &Worker,
    lease: &Lease,
    media_type: &str,
    bytes: Vec<u8>,
) -> Descriptor {
    let blob = Descriptor {
        media_type: media_type.into(),
        digest: nodekitd::oci::sha256_digest(&bytes),
        size: bytes.len() as i64,
        annotations: Default::default(),
    };
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    worker
        .write_blob_from(lease, &blob.digest, blob.size as u64, chunks)
        .await
        .unwrap();
    blob
}

fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

/// A pusher to `host/repo:1`, with no client credentials.
async fn pusher(worker: &Worker, host: &str, repo: &str) -> Pusher {
    let reference = normalize_reference(&format!("{host}/{repo}:1")).unwrap();
    Pusher::new(worker, &reference, &NoClient).await.unwrap()
}

fn curl(args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The digest `host` gives for `repo:reference` (a HEAD with the manifest types accepted).
fn resolved_digest(host: &str, repo: &str, reference: &str, user: &[&str]) -> String {
    let url = format!("http://{host}/v2/{repo}/manifests/{reference}");
    let accept = format!("Accept: {}", nodekitd::oci::MANIFEST_ACCEPT.join(", "));
    let mut args = vec!["-I", "-H", accept.as_str()];
    args.extend(user);
    args.push(&url);
    let head = String::from_utf8(curl(&args).stdout).unwrap();
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest in {head}"))
}

/// An OCI image manifest of `config` and one layer.
fn image_manifest(config: &Descriptor, layer: &Descriptor) -> Vec<u8> {
    let descriptor = |d: &Descriptor| serde_json::json!({ "mediaType": d.media_type, "digest": d.digest, "size": d.size });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config),
        "layers": [descriptor(layer)],
    });
    serde_json::to_vec(&manifest).unwrap()
}

#[tokio::test]
async fn a_blob_is_uploaded_once_and_mounted_into_another_repository() {
    let env = TestEnv::get();
    let worker = env.worker("push-mount").await;
    let lease = worker.lease("push-mount").await.unwrap();
    let blob = stored_blob(
        &worker,
        &lease,
        "application/octet-stream",
        random_bytes(3 << 20),
    )
    .await;
    let nonce = rand::random::<u32>();
    let first = pusher(&worker, &env.registry, &format!("nodekit/push-a-{nonce}")).await;
    assert_eq!(
        first.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Uploaded
    );
    assert_eq!(
        first.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Present
    );

    // What a pull from the first repository would have left on the blob.
    let label = format!("{SOURCE_ANNOTATION}{}=nodekit/push-a-{nonce}", env.registry);
    assert!(ctr(env, &["content", "label", &blob.digest, &label])
        .status
        .success());
    let second = pusher(&worker, &env.registry, &format!("nodekit/push-b-{nonce}")).await;
    assert_eq!(
        second.push_blob(&worker, &blob).await.unwrap(),
        Pushed::Mounted
    );
    lease.release().await.unwrap();
}

/// Several MiB streamed up and read back byte for byte; the descriptor's source annotation
/// mounts it elsewhere, one naming a repository without it falls back to an upload; the
/// manifest naming it resolves by its tag.
#[tokio::test]
async fn a_pushed_image_is_read_back_and_resolves_by_its_tag() {
    let env = TestEnv::get();
    let worker = env.worker("push-image").await;
    let lease = worker.lease("push-image").await.unwrap();
    let data = random_bytes(5 << 20);
    let layer_type = "application/vnd.oci.image.layer.v1.tar";
    let mut layer = stored_blob(&worker, &lease, layer_type, data.clone()).await;
    let config_type = "application/vnd.oci.image.config.v1+json";
    let config_bytes = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
        rand::random::<u64>()
    );
    let mut config = stored_blob(&worker, &lease, config_type, config_bytes.into_bytes()).await;
    let nonce = rand::random::<u32>();
    let (repo_a, repo_b) = (
        format!("nodekit/push-img-a-{nonce}"),
        format!("nodekit/push-img-b-{nonce}"),
    );

    let first = pusher(&worker, &env.registry, &repo_a).await;
    assert_eq!(
        first.push_blob(&worker, &layer).await.unwrap(),
        Pushed::Uploaded
    );
    let url = format!("http://{}/v2/{repo_a}/blobs/{}", env.registry, layer.digest);
    assert!(
        curl(&["-L", &url]).stdout == data,
        "the blob read back is the one pushed"
    );
    assert_eq!(
        first.push_blob(&worker, &layer).await.unwrap(),
        Pushed::Present
    );

    let source = format!("{SOURCE_ANNOTATION}{}", env.registry);
    layer
        .annotations
        .insert(source.clone(), format!("nodekit/nowhere-{nonce},{repo_a}"));
    config
        .annotations
        .insert(source, format!("nodekit/nowhere-{nonce}"));
    let second = pusher(&worker, &env.registry, &repo_b).await;
    assert_eq!(
        second.push_blob(&worker, &layer).await.unwrap(),
        Pushed::Mounted
    );
    assert_eq!(
        second.push_blob(&worker, &config).await.unwrap(),
        Pushed::Uploaded,
        "no repository to mount it from"
    );

    let manifest = image_manifest(&config, &layer);
    let digest = nodekitd::oci::sha256_digest(&manifest);
    let pushed = second
        .push_manifest("1", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    assert_eq!(pushed, digest);
    assert_eq!(resolved_digest(&env.registry, &repo_b, "1", &[]), digest);
    let again = second
        .push_manifest("1", OCI_MANIFEST, manifest)
        .await
        .unwrap();
    assert_eq!(again, digest, "the tag has it already");
    lease.release().await.unwrap();
}

/// Without credentials the registry refuses, and the error names it; with the daemon's docker
/// config (its `auth_file`) the blob and manifest go up; a wrong password is refused too.
#[tokio::test]
async fn a_push_to_a_registry_with_auth_needs_its_credentials() {
    let env = TestEnv::get();
    let registry = AuthRegistry::start("worker-push-auth", "dave", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let repo = "team/pushed";
    let anonymous = env.worker("push-auth").await;
    let lease = anonymous.lease("push-auth").await.unwrap();
    let layer = stored_blob(
        &anonymous,
        &lease,
        "application/octet-stream",
        random_bytes(1 << 20),
    )
    .await;

    let refused = pusher(&anonymous, &registry.host, repo)
        .await
        .push_blob(&anonymous, &layer)
        .await;
    match refused {
        Err(
            error @ WorkerError::Unauthorized {
                operation: RegistryOperation::Push,
                ..
            },
        ) => {
            let expected = format!(
                "pushing {}/{repo}:1: unauthorized (401): no credentials for {} were sent by the client",
                registry.host, registry.host
            );
            assert_eq!(error.to_string(), expected);
        }
        other => panic!("expected a refused push, got {other:?}"),
    }

    let with_file = |name: &str, password: &str| RegistryHosts {
        auth_file: Some(registry.docker_config(&dir.path().join(name), password)),
        ..Default::default()
    };
    let wrong = env
        .worker_with_hosts("push-auth-wrong", with_file("wrong.json", "nope"))
        .await;
    let refused = pusher(&wrong, &registry.host, repo)
        .await
        .push_blob(&wrong, &layer)
        .await;
    match refused {
        Err(WorkerError::Unauthorized { reason, .. }) => assert!(
            reason.contains(&format!(
                "{} refused the credentials of user \"dave\"",
                registry.host
            )),
            "{reason}"
        ),
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    let right = env
        .worker_with_hosts("push-auth-right", with_file("right.json", "s3cret"))
        .await;
    let pushing = pusher(&right, &registry.host, repo).await;
    assert_eq!(
        pushing.push_blob(&right, &layer).await.unwrap(),
        Pushed::Uploaded
    );
    let config = stored_blob(
        &anonymous,
        &lease,
        "application/vnd.oci.image.config.v1+json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        pushing.push_blob(&right, &config).await.unwrap(),
        Pushed::Uploaded
    );
    let manifest = image_manifest(&config, &layer);
    let digest = pushing
        .push_manifest("1", OCI_MANIFEST, manifest)
        .await
        .unwrap();
    let user = "dave:s3cret";
    assert_eq!(
        resolved_digest(&registry.host, repo, "1", &["-u", user]),
        digest
    );
    lease.release().await.unwrap();
}
