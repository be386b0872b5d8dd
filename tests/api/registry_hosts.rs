//! Where pulls go: a registry's mirrors (from nodekit's `[registry."host"]`, and from the node's
//! containerd `hosts.toml`) before the registry itself, and TLS registries whose certificate a
//! configured CA signed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nodekit_test_support::{ctr, AuthRegistry, TestCa, TestDaemon, TestEnv};
use nodekitd::worker::{HostConfig, RegistryHosts};

use crate::helpers::{on_pulled_image, run_build};

async fn start(test: &str, hosts: RegistryHosts) -> TestDaemon {
    TestDaemon::start_with(test, |config| {
        config.worker.registry_hosts = hosts;
    })
    .await
}

/// The test registry's image under a registry name that resolves nowhere: only a mirror
/// can serve it.
fn unreachable_name(registry: &str) -> String {
    let path = TestEnv::get()
        .registry_image
        .split_once('/')
        .map(|(_, path)| path.to_string())
        .unwrap();
    format!("{registry}/{path}")
}

#[tokio::test]
async fn a_mirror_from_nodekits_config_serves_a_registry_that_cannot() {
    let origin = "origin-a.nodekit.invalid";
    let hosts = RegistryHosts {
        hosts: BTreeMap::from([(
            origin.to_string(),
            HostConfig {
                mirrors: vec![TestEnv::get().registry.clone()],
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let daemon = start("mirror-own", hosts).await;
    let reference = unreachable_name(origin);
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, None)).await;
    result.unwrap();
    daemon.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &reference]);
}

#[tokio::test]
async fn a_mirror_from_containerds_hosts_toml_serves_a_registry_that_cannot() {
    let origin = "origin-b.nodekit.invalid";
    let certs_d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(certs_d.path().join(origin)).unwrap();
    std::fs::write(
        certs_d.path().join(origin).join("hosts.toml"),
        format!(
            "server = \"https://{origin}\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            TestEnv::get().registry
        ),
    )
    .unwrap();
    let hosts = RegistryHosts {
        containerd_hosts_dir: Some(certs_d.path().into()),
        ..Default::default()
    };
    let daemon = start("mirror-containerd", hosts).await;
    let reference = unreachable_name(origin);
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, None)).await;
    result.unwrap();

    // Without the file the registry itself is asked, and cannot answer.
    std::fs::remove_dir_all(certs_d.path().join(origin)).unwrap();
    let (result, _) = run_build(&daemon, on_pulled_image(&reference, None)).await;
    let error = result.unwrap_err();
    assert!(error.contains(origin), "{error}");
    daemon.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &reference]);
}

#[tokio::test]
async fn a_tls_registry_is_trusted_through_its_configured_ca() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new("registry CA");
    let ca_cert = ca.write_cert(&pki.path().join("ca.pem"));
    let server = ca.server(pki.path(), "registry", &["127.0.0.1"]);
    let registry = AuthRegistry::start_tls("tls", "dora", "pa55", &server, None);
    let reference = registry.seed("team/tls:1");
    let config = registry.docker_config(&pki.path().join("config.json"), "pa55");
    let tls = |ca: Vec<PathBuf>, insecure: bool| RegistryHosts {
        hosts: BTreeMap::from([(
            registry.host.clone(),
            HostConfig {
                http: Some(false),
                ca,
                insecure,
                ..Default::default()
            },
        )]),
        ..Default::default()
    };

    let untrusting = start("registry-tls-no-ca", tls(Vec::new(), false)).await;
    let (result, _) = run_build(
        &untrusting,
        on_pulled_image(&reference, Some(config.clone())),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.contains(&registry.host) && error.contains("certificate"),
        "{error}"
    );
    untrusting.stop().await;

    let trusting = start("registry-tls-ca", tls(vec![ca_cert], false)).await;
    let (result, _) = run_build(&trusting, on_pulled_image(&reference, Some(config.clone()))).await;
    result.unwrap();
    trusting.stop().await;

    // `insecure = true`: no verification at all.
    let skipping = start("registry-tls-insecure", tls(Vec::new(), true)).await;
    let (result, _) = run_build(&skipping, on_pulled_image(&reference, Some(config))).await;
    result.unwrap();
    skipping.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &reference]);
}

/// `[[registry."host".keypair]]`: a registry that admits only clients with a certificate its CA
/// signed gets one.
#[tokio::test]
async fn a_registry_asking_for_a_client_certificate_gets_the_configured_one() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new("registry CA");
    let ca_cert = ca.write_cert(&pki.path().join("ca.pem"));
    let server = ca.server(pki.path(), "registry", &["127.0.0.1"]);
    let client = ca.client(pki.path(), "nodekitd");
    let registry = AuthRegistry::start_tls("mtls", "erin", "pw", &server, Some(&ca_cert));
    let reference = registry.seed_with_client(&client, &ca_cert, "team/mtls:1");
    let config = registry.docker_config(&pki.path().join("config.json"), "pw");
    let hosts = |keypair: Option<(PathBuf, PathBuf)>| RegistryHosts {
        hosts: BTreeMap::from([(
            registry.host.clone(),
            HostConfig {
                http: Some(false),
                ca: vec![ca_cert.clone()],
                keypair,
                ..Default::default()
            },
        )]),
        ..Default::default()
    };

    let without = start("registry-mtls-without", hosts(None)).await;
    let (result, _) = run_build(&without, on_pulled_image(&reference, Some(config.clone()))).await;
    let error = result.unwrap_err();
    assert!(error.contains(&registry.host), "{error}");
    without.stop().await;

    let with = start("registry-mtls-with", hosts(Some((client.cert, client.key)))).await;
    let (result, _) = run_build(&with, on_pulled_image(&reference, Some(config))).await;
    result.unwrap();
    with.stop().await;
    ctr(TestEnv::get(), &["images", "rm", &reference]);
}
