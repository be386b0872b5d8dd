use std::time::{Duration, Instant};

use nodekit_test_support::TestEnv;
use nodekitd::worker::exec::{ExtraMount, MountSource, NetworkMode};
use nodekitd::worker::WorkerError;
use tokio_util::sync::CancellationToken;

use crate::common::Step;

#[tokio::test]
async fn a_step_reports_its_exit_status_and_both_streams() {
    let step = Step::on_busybox("exec-status").await;
    let request = step.request("echo hi > /hello; echo out; echo err >&2; exit 3");
    let (outcome, output) = step.run(request).await;
    assert_eq!(outcome.exit_code, 3);
    assert_eq!(output.stdout, "out\n");
    assert_eq!(output.stderr, "err\n");
    step.finish().await;
}

#[tokio::test]
async fn env_cwd_and_user_reach_the_process() {
    let step = Step::on_busybox("exec-user").await;
    let cases = [
        ("", "0 0 0"),
        ("builder", "1000 1000 1000"),
        ("builder:staff", "1000 50 50"),
        ("4242:4343", "4242 4343 4343"),
    ];
    for (user, expected) in cases {
        let mut request =
            step.request("echo $(id -u) $(id -g) $(id -G); echo $STEP; pwd; echo $PATH");
        request.process.user = user.to_string();
        request.process.cwd = "/tmp".into();
        let (outcome, output) = step.run(request).await;
        assert_eq!(outcome.exit_code, 0, "{output:?}");
        let lines: Vec<&str> = output.stdout.lines().collect();
        assert_eq!(lines[0], expected, "user {user:?}");
        assert_eq!(&lines[1..3], ["1", "/tmp"]);
        assert!(
            lines[3].contains("/usr/bin"),
            "default PATH missing: {}",
            lines[3]
        );
    }
    let mut request = step.request("true");
    request.process.user = "nosuchuser".into();
    let error = step
        .worker
        .exec(request, None, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("nosuchuser"), "{error}");
    step.finish().await;
}

#[tokio::test]
async fn extra_mounts_and_network_none() {
    let step = Step::on_busybox("exec-mounts").await;
    let shared = step.worker.mount_source_root().join("shared-input");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("file"), "from the host\n").unwrap();
    let mut request = step.request(
        "cat /input/file; touch /input/x 2>/dev/null || echo read-only; \
         echo data > /scratch/f && cat /scratch/f; ls /sys/class/net",
    );
    request.mounts = vec![
        ExtraMount {
            destination: "/input".into(),
            source: MountSource::Bind {
                source: shared.clone(),
                readonly: true,
            },
        },
        ExtraMount {
            destination: "/scratch".into(),
            source: MountSource::Tmpfs {
                size_bytes: Some(1 << 20),
            },
        },
    ];
    request.network = NetworkMode::None;
    let (outcome, output) = step.run(request).await;
    assert_eq!(outcome.exit_code, 0, "{output:?}");
    assert_eq!(output.stdout, "from the host\nread-only\ndata\nlo\n");
    std::fs::remove_dir_all(&shared).unwrap();
    step.finish().await;
}

#[tokio::test]
async fn another_snapshot_mounts_read_only() {
    let step = Step::on_busybox("exec-snapshot-mount").await;
    let base_chain = step.base.chain_id();
    let view_key = format!("exec-snapshot-mount-view-{}", std::process::id());
    let view = step
        .worker
        .snapshots()
        .view_mounts(&step.lease.context(), &view_key, base_chain.as_deref())
        .await
        .expect("view of the base image");
    let mut request =
        step.request("cat /base/etc/image-name; touch /base/x 2>/dev/null || echo read-only");
    request.mounts = vec![ExtraMount {
        destination: "/base".into(),
        source: MountSource::Snapshot {
            mounts: view,
            readonly: true,
        },
    }];
    let (outcome, output) = step.run(request).await;
    assert_eq!(outcome.exit_code, 0, "{output:?}");
    assert_eq!(
        output.stdout,
        format!("{}\nread-only\n", TestEnv::get().local_image)
    );
    step.worker
        .snapshots()
        .remove(&step.lease.context(), &view_key)
        .await
        .unwrap();
    step.finish().await;
}

#[tokio::test]
async fn a_missing_command_is_an_error_not_a_hang() {
    let step = Step::on_busybox("exec-missing").await;
    let mut request = step.request("");
    request.process.args = vec!["/no/such/binary".into()];
    let error = step
        .worker
        .exec(request, None, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("/no/such/binary"), "{error}");
    step.finish().await;
}

#[tokio::test]
async fn a_cancelled_step_leaves_no_task_container_or_files() {
    let step = Step::on_busybox("exec-cancel").await;
    let cancel = CancellationToken::new();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let running = {
        let (worker, request, cancel) = (
            step.worker.clone(),
            step.request("echo started; exec sleep 6061"),
            cancel.clone(),
        );
        tokio::spawn(async move { worker.exec(request, Some(sender), cancel).await })
    };
    let first = tokio::time::timeout(Duration::from_secs(20), receiver.recv()).await;
    assert!(matches!(first, Ok(Some(_))), "the step never started");
    assert!(
        eventually(sleep_is_running).await,
        "the step's process is not visible on the host"
    );
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("cancel took too long");
    assert!(matches!(result.unwrap(), Err(WorkerError::Cancelled)));
    assert!(cancelled_at.elapsed() < Duration::from_secs(10));
    assert!(!sleep_is_running(), "the killed step's process survived");
    let leftovers: Vec<_> = std::fs::read_dir(step.worker.mount_source_root())
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "step files left: {leftovers:?}");
    step.finish().await;
}

/// Polls `condition` for up to five seconds.
async fn eventually(condition: fn() -> bool) -> bool {
    for _ in 0..50 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn sleep_is_running() -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmd| cmd == b"sleep\x006061\x00")
            .unwrap_or(false)
    })
}
