//! containerd stopped and started again under a running nodekitd: during a RUN step, and while
//! nodekitd is idle. The build that meets the outage fails naming containerd and its socket;
//! nodekitd reconnects by itself, and the next builds (cached and not) succeed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nodekit_test_support::{
    free_loopback_addr, http_get, wait_serving, CountingProxy, PrivateContainerd, TestDaemon,
    TestEnv,
};
use nodekitd::worker::leases::OWNER_LABEL;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::common::{build_dockerfile, context, unique};
use crate::{build_recording, daemon_configured, daemon_on};

/// The builds that must work after an outage: a fully cached rebuild of `cached_id`, and a
/// new RUN step.
pub(crate) async fn builds_succeed_again(daemon: &TestDaemon, cached_id: &str) {
    wait_serving(&daemon.addr).await;
    let cached = build_recording(daemon, cached_id).await;
    cached
        .result
        .as_ref()
        .expect("a cached rebuild after the outage");
    assert_eq!(cached.ran(), Vec::<String>::new(), "every step cached");
    let fresh = build_recording(daemon, &unique()).await;
    fresh.result.as_ref().expect("a new RUN after the outage");
    assert_eq!(fresh.ran().len(), 1, "{:?}", fresh.ran());
}

/// The error of a build that met containerd's outage names containerd and where it was
/// looked for, not only the transport's words.
pub(crate) fn assert_names_containerd(error: &str, containerd: &PrivateContainerd) {
    let socket = containerd.socket.display().to_string();
    assert!(
        error.contains("containerd") && error.contains(&socket),
        "the error names containerd at {socket}: {error}"
    );
}

/// Waits until a step's task runs in `containerd`.
async fn task_running(containerd: &Arc<PrivateContainerd>) {
    for _ in 0..400 {
        let listed = containerd.clone();
        let tasks = tokio::task::spawn_blocking(move || listed.ids("tasks"))
            .await
            .unwrap();
        if !tasks.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no step started in the private containerd");
}

/// Waits (up to 10 s) until containerd holds no container or task of nodekit's (a step's
/// container is deleted even when containerd went away while it ran).
pub(crate) async fn no_containers_left(containerd: &Arc<PrivateContainerd>) {
    let mut left = Vec::new();
    for _ in 0..100 {
        let listed = containerd.clone();
        left = tokio::task::spawn_blocking(move || {
            let mut left = listed.ids("containers");
            left.extend(listed.ids("tasks"));
            left
        })
        .await
        .unwrap();
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("containers left in containerd: {left:?}");
}

/// A fresh directory for a daemon's root.
pub(crate) fn daemon_dir(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nodekit-{test}-"))
        .tempdir()
        .expect("a daemon directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restarted_during_a_run_fails_that_build_and_the_next_ones_succeed() {
    restart_during_a_run("restart-run", Duration::ZERO).await;
}

/// containerd stays away longer than a step's teardown waits for it: the step's container and
/// task (still running under its shim) are removed once containerd is back, without a restart
/// of nodekitd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_down_longer_during_a_run_leaves_no_container_once_back() {
    restart_during_a_run("restart-run-long", LONG_OUTAGE).await;
}

/// Longer than a step's teardown retries (5 s).
const LONG_OUTAGE: Duration = Duration::from_secs(7);

/// containerd stopped for `downtime` while a RUN step sleeps, then started again.
async fn restart_during_a_run(test: &str, downtime: Duration) {
    let containerd = Arc::new(PrivateContainerd::start(test));
    let dir = daemon_dir(test);
    let daemon = daemon_on(test, &containerd, dir.path().to_path_buf()).await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first.result.as_ref().expect("a build before the outage");

    let sleeper = context(
        &format!(
            "FROM {}\nARG ID\nRUN echo $ID; sleep 60\n",
            TestEnv::get().local_image
        ),
        &[],
    );
    let started = Instant::now();
    let restarted = containerd.clone();
    let outage = async move {
        task_running(&restarted).await;
        tokio::task::spawn_blocking(move || {
            restarted.stop_daemon();
            std::thread::sleep(downtime);
            restarted.start_again();
        })
        .await
        .unwrap();
    };
    let id = unique();
    let args = [("ID", id.as_str())];
    let (built, ()) = tokio::join!(
        build_dockerfile(&daemon, sleeper.path(), &args, None),
        outage
    );
    let error = built
        .result
        .expect_err("the build met containerd's restart");
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the build failed at once, not after its 60 s sleep: {:?}",
        started.elapsed()
    );
    assert_names_containerd(&error, &containerd);
    eprintln!("the build that met the restart: {error}");

    builds_succeed_again(&daemon, &cached_id).await;
    no_containers_left(&containerd).await;
    daemon.stop().await;
    no_step_leases_left(&containerd).await;
}

/// Waits (up to 10 s) until containerd holds no lease of a stopped nodekitd's steps (those of
/// its cache records stay, by design): one it could not release while containerd was away is
/// released once containerd is back.
async fn no_step_leases_left(containerd: &Arc<PrivateContainerd>) {
    let mut left = Vec::new();
    for _ in 0..100 {
        let listed = containerd.clone();
        left = tokio::task::spawn_blocking(move || {
            let leases = listed.ctr(&["leases", "ls"]);
            String::from_utf8_lossy(&leases.stdout)
                .lines()
                .filter(|line| line.contains(&format!("{OWNER_LABEL}=")))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("step leases left in containerd: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_down_while_idle_fails_builds_clearly_until_it_is_back() {
    let test = "restart-idle";
    let containerd = Arc::new(PrivateContainerd::start(test));
    let dir = daemon_dir(test);
    let debug = free_loopback_addr();
    let daemon = daemon_configured(test, &containerd, dir.path().to_path_buf(), |config| {
        config.debug_addr = Some(debug)
    })
    .await;
    let cached_id = unique();
    let first = build_recording(&daemon, &cached_id).await;
    first.result.as_ref().expect("a build before the outage");
    assert!(readiness(debug).await.0.contains(" 200 "), "ready before");

    let stopped = containerd.clone();
    tokio::task::spawn_blocking(move || stopped.stop_daemon())
        .await
        .unwrap();
    let (head, body) = readiness(debug).await;
    assert!(
        head.contains(" 503 "),
        "not ready without containerd: {head}"
    );
    assert_names_containerd(&body, &containerd);
    grpc_health_becomes(&daemon, ServingStatus::NotServing).await;
    let started = Instant::now();
    let refused = build_recording(&daemon, &unique()).await;
    let error = refused.result.expect_err("no containerd, no build");
    assert_names_containerd(&error, &containerd);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a build without containerd fails within seconds: {:?}",
        started.elapsed()
    );
    eprintln!("the build while containerd was down: {error}");

    let restarted = containerd.clone();
    tokio::task::spawn_blocking(move || restarted.start_again())
        .await
        .unwrap();
    assert!(readiness(debug).await.0.contains(" 200 "), "ready again");
    grpc_health_becomes(&daemon, ServingStatus::Serving).await;
    builds_succeed_again(&daemon, &cached_id).await;
    daemon.stop().await;
}

/// Waits (up to 15 s) for the daemon's standard gRPC health service to answer `status`, as
/// a Kubernetes grpc probe asks it.
async fn grpc_health_becomes(daemon: &TestDaemon, status: ServingStatus) {
    let mut client = HealthClient::new(daemon.channel().await);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = client
            .check(HealthCheckRequest::default())
            .await
            .expect("the health service answers")
            .into_inner()
            .status;
        if answer == status as i32 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gRPC health still {answer}, not {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `/readyz` of the debug listener at `addr`: status line with headers, and body.
async fn readiness(addr: std::net::SocketAddr) -> (String, String) {
    tokio::task::spawn_blocking(move || http_get(addr, "/readyz"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restarted_during_a_pull_fails_that_build_and_the_next_pull_succeeds() {
    let env = TestEnv::get();
    let containerd = Arc::new(PrivateContainerd::start("restart-pull"));
    let dir = daemon_dir("faults-restart-pull");
    let daemon = daemon_on("faults-restart-pull", &containerd, dir.path().to_path_buf()).await;
    // The registry's image through a proxy that holds the layer half-way: the pull is then
    // writing that blob into containerd when containerd goes.
    let proxy = Arc::new(CountingProxy::start(&env.registry));
    let image = env.registry_image.replacen(&env.registry, &proxy.host, 1);
    let dockerfile = format!("FROM {image}\nARG ID\nRUN echo $ID > /id\n");
    let pulling = context(&dockerfile, &[]);
    proxy.hold_answers_after(LAYER_PART);
    let (held, restarted) = (proxy.clone(), containerd.clone());
    let outage = tokio::task::spawn_blocking(move || {
        assert!(
            held.wait_held(Duration::from_secs(30)),
            "the pull reached a layer"
        );
        restarted.restart();
        held.release();
    });
    let id = unique();
    let args = [("ID", id.as_str())];
    let (built, outage) = tokio::join!(
        build_dockerfile(&daemon, pulling.path(), &args, None),
        outage
    );
    outage.unwrap();
    let error = built.result.expect_err("the pull met containerd's restart");
    assert_names_containerd(&error, &containerd);
    // The pull's own failure, not the release of its lease that followed while containerd
    // was still away.
    assert!(!error.contains("lease delete"), "{error}");
    eprintln!("the build whose pull met the restart: {error}");

    wait_serving(&daemon.addr).await;
    let pulled = build_dockerfile(&daemon, pulling.path(), &args, None).await;
    pulled
        .result
        .as_ref()
        .expect("the pull and RUN after the restart");
    assert_eq!(pulled.ran().len(), 1, "{:?}", pulled.ran());
    let cached = build_dockerfile(&daemon, pulling.path(), &args, None).await;
    cached
        .result
        .as_ref()
        .expect("a cached rebuild after the restart");
    assert_eq!(cached.ran(), Vec::<String>::new(), "every step cached");
    daemon.stop().await;
}

/// Bytes of the registry's answers let through before the rest is held: past the manifests
/// and config, inside the layer (a busybox of about a megabyte).
const LAYER_PART: u64 = 64 << 10;
