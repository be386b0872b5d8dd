//! TLS on nodekitd's tcp listener, with certificates of a test CA: mutual TLS admits only the
//! clients the CA signed, a rotated certificate is served to the next connection while open
//! ones go on, and the unix socket takes the configured group.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nodekit::build::{build, BuildRequest};
use nodekit::connect::{ClientTls, Target};
use nodekit_test_support::{free_loopback_addr, CertFiles, TestCa, TestDaemon};
use nodekitd::config::{ListenAddr, TlsFiles};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::{busybox, definition};

/// Where a test's certificates go (the daemon's own state directory is another).
fn test_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nodekit-tls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A nodekitd serving TLS on a loopback tcp port as well as its unix socket.
async fn start_tls(test: &str, tls: TlsFiles) -> (TestDaemon, SocketAddr) {
    let tcp = free_loopback_addr();
    let daemon = TestDaemon::start_with(test, |config| {
        config.addrs.push(ListenAddr::Tcp(tcp));
        config.security.tls = Some(tls);
    })
    .await;
    (daemon, tcp)
}

fn target(tcp: SocketAddr, ca: Option<&Path>, client: Option<&CertFiles>) -> Target {
    Target {
        addr: format!("tcp://{tcp}"),
        tls: Some(ClientTls {
            ca: ca.map(Path::to_path_buf),
            cert: client.map(|c| c.cert.clone()),
            key: client.map(|c| c.key.clone()),
            server_name: None,
        }),
    }
}

fn named(mut target: Target, name: &str) -> Target {
    if let Some(tls) = &mut target.tls {
        tls.server_name = Some(name.into());
    }
    target
}

/// A health check over a new connection to `target`.
async fn health(target: &Target) -> anyhow::Result<()> {
    let channel = nodekit::connect::open(target).await?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_the_ca_signed() {
    let dir = test_dir("tls-mutual");
    let ca = TestCa::new("nodekit test CA");
    let ca_cert = ca.write_cert(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server", &["127.0.0.1", "localhost"]);
    let client = ca.client(&dir, "client");
    let stranger = TestCa::new("another CA").client(&dir, "stranger");
    let tls = TlsFiles {
        cert: server.cert.clone(),
        key: server.key.clone(),
        ca: Some(ca_cert.clone()),
    };
    let (daemon, tcp) = start_tls("tls-mutual", tls).await;

    // The CA's client builds.
    let admitted = target(tcp, Some(&ca_cert), Some(&client));
    let channel = nodekit::connect::open(&admitted).await.unwrap();
    let state = busybox().run(["sh", "-c", "echo over-mtls > /out"]).root();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        ..Default::default()
    };
    build(channel, request, |_| {}).await.unwrap();

    // Without a certificate, with one of another CA, or without TLS: refused.
    for (what, refused) in [
        ("no client certificate", target(tcp, Some(&ca_cert), None)),
        ("another CA's", target(tcp, Some(&ca_cert), Some(&stranger))),
        ("plain h2c", Target::plain(&format!("tcp://{tcp}"))),
    ] {
        let answer = health(&refused).await;
        assert!(answer.is_err(), "{what}: {answer:?}");
    }
    // A refused handshake costs the daemon nothing: the admitted client goes on.
    health(&admitted).await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_the_next_connection_and_open_ones_go_on() {
    let dir = test_dir("tls-rotate");
    let ca = TestCa::new("nodekit test CA");
    let ca_cert = ca.write_cert(&dir.join("ca.pem"));
    let served = ca.server(&dir, "served", &["old.nodekit.test"]);
    let tls = TlsFiles {
        cert: served.cert.clone(),
        key: served.key.clone(),
        ca: None,
    };
    let (daemon, tcp) = start_tls("tls-rotate", tls).await;
    let server_tls = target(tcp, Some(&ca_cert), None);
    let old = named(server_tls.clone(), "old.nodekit.test");
    let new = named(server_tls, "new.nodekit.test");
    let open_before = nodekit::connect::open(&old).await.unwrap();
    assert!(health(&new).await.is_err(), "the new name before rotation");

    // Replace both files at once, as a Secret's rotation does.
    let rotated = ca.server(&dir, "rotated", &["new.nodekit.test"]);
    std::fs::rename(&rotated.cert, &served.cert).unwrap();
    std::fs::rename(&rotated.key, &served.key).unwrap();

    health(&new).await.unwrap();
    assert!(health(&old).await.is_err(), "the old name after rotation");
    HealthClient::new(open_before)
        .check(HealthCheckRequest::default())
        .await
        .expect("a connection from before the rotation keeps serving");
    daemon.stop().await;
}

#[tokio::test]
async fn a_missing_key_fails_the_start_naming_the_file() {
    let dir = test_dir("tls-missing");
    let server = TestCa::new("nodekit test CA").server(&dir, "server", &["localhost"]);
    let missing = dir.join("no-such-key.pem");
    let error = nodekitd::server::tls::ReloadingConfig::load(TlsFiles {
        cert: server.cert,
        key: missing.clone(),
        ca: None,
    })
    .err()
    .expect("an error")
    .to_string();
    assert!(error.contains(&missing.display().to_string()), "{error}");
}

#[tokio::test]
async fn the_unix_socket_belongs_to_the_configured_group() {
    let gid = 4242;
    let daemon = TestDaemon::start_with("socket-group", |c| {
        c.security.socket_owner.gid = Some(gid);
    })
    .await;
    let socket = daemon.addr.trim_start_matches("unix://").to_string();
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.gid(), gid);
    assert_eq!(meta.mode() & 0o777, 0o660);
    daemon.stop().await;
}
