//! An `ADD` URL with an endless body or a server that goes quiet, and archives that inflate far
//! beyond their size: each step stops at its `[limits]` with an error naming it, and the daemon
//! serves the next build.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use nodekit_test_support::{leases_labelled, number_from_env, TestDaemon};
use nodekitd::config::limits::ContentLimits;
use nodekitd::worker::leases::OWNER_LABEL;

use crate::build::{assert_still_serving, dockerfile, peak_rss_kb};
use crate::server::{Body, HostileServer};

/// Small limits, so that the tests pass them in a few seconds.
const LIMITS: ContentLimits = ContentLimits {
    download_bytes: Some(32 << 20),
    unpack_bytes: Some(16 << 20),
    download_idle: Some(IDLE),
};

const IDLE: Duration = Duration::from_secs(2);

/// What the bomb's one file inflates to (its archive is a few kB).
const BOMB_FILE_BYTES: u64 = 512 << 20;

async fn limited_daemon(test: &str) -> TestDaemon {
    TestDaemon::start_with(test, |config| config.limits = LIMITS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_add_url_stops_at_the_download_limit() {
    let daemon = limited_daemon("hostile-endless").await;
    let dir = tempfile::tempdir().unwrap();
    // A length above the limit is refused before the body is read.
    let too_long = HostileServer::start(Body::Fixed(vec![0; (33 << 20) + 1])).await;
    let dockerfile_text = format!("FROM scratch\nADD {}/long /long\n", too_long.url);
    std::fs::write(dir.path().join("Dockerfile"), dockerfile_text).unwrap();
    let error = dockerfile(&daemon, dir.path(), None).await.unwrap_err();
    assert!(
        error.contains("longer than the limit of 33554432 bytes"),
        "{error}"
    );

    // Endless headers: the HTTP client's own bound on them ends the step.
    let headers = HostileServer::start(Body::EndlessHeaders).await;
    let dockerfile_text = format!("FROM scratch\nADD {}/headers /headers\n", headers.url);
    std::fs::write(dir.path().join("Dockerfile"), dockerfile_text).unwrap();
    let error = dockerfile(&daemon, dir.path(), None).await.unwrap_err();
    let at = format!("downloading {}/headers", headers.url);
    assert!(
        error.contains(&at) && error.contains("message head is too large"),
        "{error}"
    );

    let server = HostileServer::start(Body::Endless).await;
    let dockerfile_text = format!("FROM scratch\nADD {}/endless /endless\n", server.url);
    std::fs::write(dir.path().join("Dockerfile"), dockerfile_text).unwrap();
    let before = peak_rss_kb();
    let error = dockerfile(&daemon, dir.path(), None).await.unwrap_err();
    eprintln!(
        "endless body: VmHWM {before} kB before, {} kB after",
        peak_rss_kb()
    );
    assert!(
        error.contains("longer than the limit of 33554432 bytes ([limits] maxDownloadBytes)"),
        "{error}"
    );
    assert_still_serving(&daemon).await;
    daemon.stop().await;
}

/// A server that accepts and never answers, and one that stops halfway through its body: the step
/// fails once nothing has come for `downloadIdleTimeout`, and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_quiet_times_out() {
    let daemon = limited_daemon("hostile-quiet").await;
    let dir = tempfile::tempdir().unwrap();
    for (body, name) in [(Body::Silent, "silent"), (Body::Stalling, "stalling")] {
        let server = HostileServer::start(body).await;
        let dockerfile_text = format!("FROM scratch\nADD {}/{name} /{name}\n", server.url);
        std::fs::write(dir.path().join("Dockerfile"), dockerfile_text).unwrap();
        let started = Instant::now();
        let error = dockerfile(&daemon, dir.path(), None).await.unwrap_err();
        let expected = format!(
            "downloading {}/{name}: the server sent nothing for 2s ([limits] downloadIdleTimeout)",
            server.url
        );
        assert!(error.contains(&expected), "{name}: {error}");
        assert!(
            started.elapsed() >= IDLE,
            "{name}: failed before the timeout"
        );
        wait_for("the quiet server's connection closed", || {
            server.seen.hung_up()
        })
        .await;
    }
    assert_still_serving(&daemon).await;
    daemon.stop().await;
}

/// Without a limit (upstream's behaviour) the download streams to disk in bounded memory and
/// ends when the client goes away: the build is cancelled, the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlimited_endless_download_ends_with_its_client() {
    let daemon = TestDaemon::start_with("hostile-endless-cancel", |config| {
        config.limits.download_bytes = None;
    })
    .await;
    let server = HostileServer::start(Body::Endless).await;
    let dir = tempfile::tempdir().unwrap();
    let dockerfile_text = format!("FROM scratch\nADD {}/endless /endless\n", server.url);
    std::fs::write(dir.path().join("Dockerfile"), dockerfile_text).unwrap();
    let before = peak_rss_kb();
    let client = {
        let (addr, root, path) = (
            daemon.addr.clone(),
            daemon.root.clone(),
            dir.path().to_owned(),
        );
        tokio::spawn(
            async move { dockerfile(&TestDaemon::attach(&addr, &root), &path, None).await },
        )
    };
    let mib = download_mib();
    wait_for("the download under way", || server.seen.sent() > mib << 20).await;
    let id = nodekitd::api::load_or_create_worker_id(&daemon.root.join("root")).unwrap();
    let owner = format!("nodekitd-{id}");
    let downloading = leases_labelled(OWNER_LABEL, &owner).len();
    assert!(
        downloading > KEPT_LOCAL_SOURCES,
        "the download holds a lease"
    );
    client.abort();
    wait_for("the download's connection closed", || server.seen.hung_up()).await;
    // The two kept local sources (context, dockerfile) hold a lease each; the download's
    // vertex lease, with its half-written snapshot, must go with the cancelled build.
    wait_for("the cancelled download's lease released", || {
        leases_labelled(OWNER_LABEL, &owner).len() <= KEPT_LOCAL_SOURCES
    })
    .await;
    eprintln!(
        "unlimited endless body: {} MiB sent, VmHWM {before} kB before, {} kB after",
        server.seen.sent() >> 20,
        peak_rss_kb()
    );
    assert_still_serving(&daemon).await;
    daemon.stop().await;
}

/// How much the unlimited download runs before its client leaves: 64 MiB, or
/// `NODEKIT_HOSTILE_DOWNLOAD_MIB` for a long run measuring the daemon's peak memory (run that test
/// alone: the other tests share the process).
fn download_mib() -> u64 {
    number_from_env("NODEKIT_HOSTILE_DOWNLOAD_MIB", 64)
}

/// Leases a daemon keeps after a Dockerfile build: its kept copies of the two local sources.
const KEPT_LOCAL_SOURCES: usize = 2;

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30 + download_mib() / 16);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_stops_at_the_unpack_limit() {
    let daemon = limited_daemon("hostile-bomb").await;
    let dir = tempfile::tempdir().unwrap();
    let bomb = zstd_tar_bomb(&dir.path().join("bomb.tar.zst"));
    let server = HostileServer::start(Body::Fixed(bomb)).await;
    let before = peak_rss_kb();
    for add in [
        "ADD bomb.tar.zst /out/".to_string(),
        format!("ADD --unpack=true {}/bomb.tar.zst /out/", server.url),
    ] {
        let text = format!("FROM scratch\n{add}\n");
        std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
        let error = dockerfile(&daemon, dir.path(), None).await.unwrap_err();
        assert!(
            error.contains(
                "bomb.tar.zst: the extraction would write more than the limit of 16777216 bytes \
                 ([limits] maxUnpackBytes)"
            ),
            "{add}: {error}"
        );
    }
    eprintln!(
        "bombs: VmHWM {before} kB before, {} kB after",
        peak_rss_kb()
    );
    assert_still_serving(&daemon).await;
    daemon.stop().await;
}

/// A zstd tar of one file of zeros of [`BOMB_FILE_BYTES`]; returns the archive's bytes.
fn zstd_tar_bomb(path: &Path) -> Vec<u8> {
    let file = std::fs::File::create(path).unwrap();
    let encoder = zstd::Encoder::new(file, 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(BOMB_FILE_BYTES);
    header.set_mode(0o644);
    header.set_cksum();
    let zeros = std::io::repeat(0).take(BOMB_FILE_BYTES);
    tar.append_data(&mut header, "zeros", zeros).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() < 1 << 20, "the bomb is small: {}", bytes.len());
    bytes
}
