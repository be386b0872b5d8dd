//! Private base images: a registry with basic auth on loopback. The client's credentials (its
//! session's Auth service, from its docker config) pull the image; without them the build fails
//! naming the registry, the reference and the status; nodekitd's own docker config serves
//! builds whose client has none.

use nodekit_test_support::{ctr, AuthRegistry, TestDaemon, TestEnv};

use crate::helpers::{on_pulled_image, run_build};

fn remove_image(reference: &str) {
    ctr(TestEnv::get(), &["images", "rm", reference]);
}

#[tokio::test]
async fn a_private_base_image_is_pulled_with_the_clients_credentials_only() {
    let registry = AuthRegistry::start("client-auth", "alice", "s3cret");
    let reference = registry.seed("team/base:1");
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start("registry-client-auth").await;

    let (result, _) = run_build(&daemon, on_pulled_image(&reference, None)).await;
    let error = result.unwrap_err();
    let expected = format!(
        "pulling {reference}: unauthorized (401): no credentials for {} were sent by the client",
        registry.host
    );
    assert!(error.contains(&expected), "{error}");

    let wrong = registry.docker_config(&dir.path().join("wrong.json"), "not-the-password");
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, Some(wrong))).await;
    let error = result.unwrap_err();
    assert!(
        error.contains("unauthorized (401)")
            && error.contains("refused the credentials of user \"alice\" from the client"),
        "{error}"
    );

    let right = registry.docker_config(&dir.path().join("config.json"), "s3cret");
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, Some(right))).await;
    result.unwrap();
    daemon.stop().await;
    remove_image(&reference);
}

#[tokio::test]
async fn nodekitds_own_docker_config_serves_a_client_without_credentials() {
    let registry = AuthRegistry::start("daemon-auth", "bob", "hunter2");
    let reference = registry.seed("team/base:2");
    let dir = tempfile::tempdir().unwrap();
    let auth_file = registry.docker_config(&dir.path().join("dockerconfig.json"), "hunter2");
    let daemon = TestDaemon::start_with("registry-daemon-auth", |config| {
        config.worker.registry_hosts.auth_file = Some(auth_file);
    })
    .await;
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, None)).await;
    result.unwrap();
    daemon.stop().await;
    remove_image(&reference);
}

/// `push=true` to a registry with basic auth: refused naming the push and the registry without
/// the client's credentials (the node's store left without the name), sent with them; skopeo
/// then reads the image (its layers gzip-compressed) back.
#[tokio::test]
async fn a_push_uses_the_clients_credentials() {
    let registry = AuthRegistry::start("push-auth", "carol", "pw");
    let dir = tempfile::tempdir().unwrap();
    let daemon = TestDaemon::start("registry-push").await;
    let target = format!("{}/team/pushed:1", registry.host);
    let nonce = std::process::id();
    let state = crate::helpers::busybox()
        .run(["sh", "-c", &format!("echo {nonce} > /pushed")])
        .root();
    let request = |docker_config| nodekit::build::BuildRequest {
        definition: Some(crate::helpers::definition(&state)),
        exporters: vec![(
            "image".into(),
            [("name", target.as_str()), ("push", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )],
        services: nodekit::session::SessionServices {
            docker_config,
            ..Default::default()
        },
        ..Default::default()
    };

    let (result, _) = run_build(&daemon, request(None)).await;
    let error = result.unwrap_err();
    let expected = format!(
        "pushing {target}: unauthorized (401): no credentials for {} were sent by the client",
        registry.host
    );
    assert!(error.contains(&expected), "{error}");
    assert_eq!(error.matches(&target).count(), 1, "named once: {error}");
    assert_eq!(
        crate::push::stored_digest(&target),
        None,
        "a refused push names nothing on the node"
    );

    let right = registry.docker_config(&dir.path().join("config.json"), "pw");
    let (result, _) = run_build(&daemon, request(Some(right))).await;
    let digest = result.unwrap()["containerimage.digest"].clone();
    let raw = crate::helpers::skopeo_raw_manifest(
        &["--tls-verify=false", "--creds", "carol:pw"],
        &format!("docker://{target}"),
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        nodekitd::oci::sha256_digest(&raw),
        digest,
        "the pushed manifest is the stored one"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers
        .iter()
        .all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"));
    daemon.stop().await;
    remove_image(&target);
}
