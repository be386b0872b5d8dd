//! The debug listener: `/healthz`, `/readyz` and `/metrics`, whose build and cache counters move
//! with the builds it serves (a rebuild's cached step is a cache hit).

use std::io::{Read, Write};
use std::net::SocketAddr;

use nodekit::build::BuildRequest;
use nodekit_test_support::TestDaemon;

use crate::helpers::{busybox, definition, run_build};

/// Status line, headers and body of a plain HTTP/1.0 GET.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn the_debug_listener_serves_health_readiness_and_moving_metrics() {
    let debug: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("nodekit-api-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let daemon = TestDaemon::start_configured("metrics", dir, |config| {
        config.debug_addr = Some(debug);
    })
    .await;
    let (head, body) = http_get(debug, "/healthz");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert_eq!(body, "ok\n");
    let (head, body) = http_get(debug, "/readyz");
    assert!(head.contains(" 200 "), "{head}: {body}");

    let exec_hits = "nodekit_cache_lookups_total{op=\"exec\",result=\"hit\"}";
    let (_, before) = http_get(debug, "/metrics");
    let hits_before = sample(&before, exec_hits).unwrap_or(0.0);
    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("echo {} > /metrics-run", rand::random::<u64>()),
        ])
        .root();
    for _ in 0..2 {
        let request = BuildRequest {
            definition: Some(definition(&state)),
            ..Default::default()
        };
        run_build(&daemon, request).await.0.unwrap();
    }
    let (head, after) = http_get(debug, "/metrics");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let builds = "nodekit_builds_total{frontend=\"llb\",outcome=\"success\"}";
    assert_eq!(sample(&after, builds), Some(2.0), "{after}");
    assert_eq!(
        sample(&after, exec_hits),
        Some(hits_before + 1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "nodekit_active_builds"),
        Some(0.0),
        "{after}"
    );
    for family in [
        "nodekit_build_duration_seconds_count{frontend=\"llb\"}",
        "nodekit_cache_records",
        "nodekit_active_sessions",
        "nodekit_process_resident_memory_bytes",
        "nodekit_process_open_fds",
    ] {
        assert!(sample(&after, family).is_some(), "{family} in {after}");
    }
    assert!(
        after.contains("# HELP nodekit_builds Builds by frontend"),
        "{after}"
    );
    daemon.stop().await;
}
