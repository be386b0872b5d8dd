//! The debug listener: `/healthz`, `/readyz` and `/metrics`, whose build, cache, context, layer
//! and containerd counters move with the builds it serves (a rebuild's cached step is a cache
//! hit, a local source's bytes are counted, an export writes layers); `/debug/pprof/profile`, a
//! CPU profile pprof tools read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use nodekit::build::BuildRequest;
use nodekit::session::SessionServices;
use nodekit_llb_builder::{Copy, Local};
use nodekit_test_support::{free_loopback_addr, http_get, http_get_bytes, Prometheus, TestDaemon};

use crate::helpers::{busybox, definition, image_output, run_build};

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn start_with_debug(test: &str, debug: SocketAddr) -> TestDaemon {
    TestDaemon::start_with(test, |config| {
        config.debug_addr = Some(debug);
    })
    .await
}

#[tokio::test]
async fn the_debug_listener_serves_health_readiness_and_moving_metrics() {
    let debug = free_loopback_addr();
    let daemon = start_with_debug("metrics", debug).await;
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
            .contains("content-type: text/plain; version=0.0.4"),
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
        after.contains("# HELP nodekit_builds_total Builds by frontend"),
        "{after}"
    );
    assert_eq!(
        sample(&after, "nodekit_context_received_bytes_total"),
        Some(0.0),
        "no local source yet: {after}"
    );

    // A local context copied in and exported as an image with gzip layers.
    let layers = |text: &str, compression: &str| {
        let series = format!("nodekit_layers_written_total{{compression=\"{compression}\"}}");
        sample(text, &series).unwrap_or_else(|| panic!("{series} in {text}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let payload = format!("{}\n", rand::random::<u64>());
    std::fs::write(dir.path().join("payload.txt"), &payload).unwrap();
    let context = Local::new("context").into_state();
    let state = busybox().file(Copy::new(&context, "/payload.txt", "/payload.txt"));
    let mut exporter = image_output("nodekit.test/api-metrics:1");
    if let Some((_, attrs)) = exporter.first_mut() {
        attrs.insert("compression".into(), "gzip".into());
    }
    let request = BuildRequest {
        definition: Some(definition(&state)),
        services: SessionServices {
            locals: BTreeMap::from([("context".to_string(), dir.path().to_path_buf())]),
            ..Default::default()
        },
        exporters: exporter,
        ..Default::default()
    };
    run_build(&daemon, request).await.0.unwrap();
    let (_, exported) = http_get(debug, "/metrics");
    assert_eq!(
        sample(&exported, "nodekit_context_received_bytes_total"),
        Some(payload.len() as f64),
        "{exported}"
    );
    assert_eq!(
        sample(&exported, "nodekit_context_received_files_total"),
        Some(1.0),
        "{exported}"
    );
    // The copy's layer: its tar written for the export, then its gzip copy.
    assert!(
        layers(&exported, "gzip") >= layers(&after, "gzip") + 1.0,
        "{exported}"
    );
    assert!(
        layers(&exported, "uncompressed") >= layers(&after, "uncompressed") + 1.0,
        "{exported}"
    );
    assert_eq!(layers(&exported, "zstd"), 0.0, "{exported}");
    let gzip_bytes = "nodekit_layer_written_bytes_total{compression=\"gzip\"}";
    assert!(
        sample(&exported, gzip_bytes).unwrap_or(0.0) > 0.0,
        "{exported}"
    );
    for service in [
        "images",
        "content",
        "snapshots",
        "containers",
        "tasks",
        "leases",
    ] {
        // Successful builds make no failed calls (absent images, blobs and snapshots are
        // ordinary answers, not errors).
        let series = format!("nodekit_containerd_errors_total{{service=\"{service}\"}}");
        assert_eq!(
            sample(&exported, &series),
            Some(0.0),
            "{series} in {exported}"
        );
    }
    daemon.stop().await;
}

/// Prometheus itself scrapes nodekitd during and after builds, and its query API sees the cache
/// hit counter grow by the cached steps of a rebuild; promtool accepts the exposition.
#[tokio::test]
async fn prometheus_sees_a_rebuilds_cached_steps_as_cache_hits() {
    let debug = free_loopback_addr();
    let daemon = start_with_debug("prometheus", debug).await;
    let prometheus = Prometheus::start("scrape", debug);
    let hits = "nodekit_cache_lookups_total{op=\"exec\",result=\"hit\"}";
    let before = prometheus
        .wait_for("up{job=\"nodekitd\"}", 1.0, Duration::from_secs(20))
        .and_then(|_| prometheus.query(hits));
    let before = before.expect("prometheus scraped nodekitd");

    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("echo {} > /scraped", rand::random::<u64>()),
        ])
        .root();
    let mut cached_steps = 0;
    for _ in 0..2 {
        let request = BuildRequest {
            definition: Some(definition(&state)),
            ..Default::default()
        };
        let (result, updates) = run_build(&daemon, request).await;
        result.unwrap();
        cached_steps = updates
            .iter()
            .flat_map(|u| u.vertexes.iter())
            .filter(|v| v.cached && v.name.contains("/scraped"))
            .map(|v| v.digest.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
    }
    assert_eq!(cached_steps, 1, "the rebuild's RUN step was cached");
    let seen = prometheus.wait_for(hits, before + 1.0, Duration::from_secs(20));
    assert_eq!(seen, Some(before + 1.0));

    let (_, exposition) = http_get(debug, "/metrics");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().unwrap();
        stdin.write_all(exposition.as_bytes()).unwrap();
    }
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    drop(prometheus);
    daemon.stop().await;
}

/// Burns CPU on this thread for `duration`, so a profile of this process has samples.
fn spin_for_profile(duration: Duration) -> u64 {
    let started = std::time::Instant::now();
    let mut x = 0u64;
    while started.elapsed() < duration {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    x
}

/// A CPU profile taken while a build runs is a gzipped pprof protobuf with CPU samples (what
/// `go tool pprof` reads); a second request meanwhile is refused, and so are bad durations and
/// formats other than pprof's.
#[tokio::test]
async fn a_cpu_profile_taken_during_a_build_is_pprof() {
    use nodekit_proto::perftools::profiles::Profile;
    use prost::Message;

    let debug = free_loopback_addr();
    let daemon = start_with_debug("pprof", debug).await;
    for bad in ["seconds=0", "seconds=301", "seconds=x", "format=flamegraph"] {
        let (head, body) = http_get(debug, &format!("/debug/pprof/profile?{bad}"));
        assert!(head.contains(" 400 "), "{bad}: {head}\n{body}");
    }

    let state = busybox()
        .run([
            "sh",
            "-c",
            &format!("echo {} > /profiled; sleep 1", rand::random::<u64>()),
        ])
        .root();
    let request = BuildRequest {
        definition: Some(definition(&state)),
        ..Default::default()
    };
    let profile = tokio::task::spawn_blocking(move || {
        http_get_bytes(debug, "/debug/pprof/profile?seconds=2")
    });
    let refused = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        let refused = http_get(debug, "/debug/pprof/profile?seconds=1");
        spin_for_profile(Duration::from_millis(1000));
        refused
    });
    let (built, profile, refused) = tokio::join!(run_build(&daemon, request), profile, refused);
    built.0.unwrap();
    let (head, body) = refused.unwrap();
    assert!(
        head.contains(" 409 ") && body.contains("already"),
        "{head}\n{body}"
    );
    let (head, gzipped) = profile.unwrap();
    assert!(head.contains(" 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/octet-stream"),
        "{head}"
    );
    let mut encoded = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gzipped.as_slice()),
        &mut encoded,
    )
    .expect("the profile is gzipped");
    let profile = Profile::decode(encoded.as_slice()).expect("a pprof profile");
    let name = |index: i64| profile.string_table[index as usize].as_str();
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (name(t.r#type), name(t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert!(!profile.sample.is_empty(), "no samples");
    assert!(
        profile.duration_nanos >= 1_900_000_000,
        "{}",
        profile.duration_nanos
    );
    assert!(
        profile
            .string_table
            .iter()
            .any(|s| s.contains("spin_for_profile")),
        "the busy function is in the profile"
    );
    assert!(
        !profile
            .string_table
            .iter()
            .any(|s| s.contains("trace_unsynchronized")),
        "the sampler's own frames are not in the profile"
    );

    daemon.stop().await;
}
