//! `kill -9` in the middle of a build: after a restart the index and containerd agree (every
//! record's snapshot and lease exist, every cache lease belongs to a record) and builds go on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nodekit_test_support::{ctr, leases_labelled, wait_serving, TestEnv};

use crate::common::{build_dockerfile, context, unique};

/// A real nodekitd process (the binary cargo built next to this test), so it can be killed.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    async fn start(root: &Path) -> Process {
        let env = TestEnv::get();
        let addr = format!("unix://{}", root.join("nodekitd.sock").display());
        let _ = std::fs::remove_file(root.join("nodekitd.sock"));
        let child = Command::new(nodekitd_binary())
            .arg("--root")
            .arg(root)
            .arg("--addr")
            .arg(&addr)
            .arg("--containerd-worker-addr")
            .arg(&env.socket)
            .arg("--containerd-worker-namespace")
            .arg(&env.namespace)
            .stderr(std::fs::File::create(root.join("nodekitd.log")).expect("a log file"))
            .spawn()
            .expect("nodekitd starts");
        let process = Process { child, addr };
        wait_serving(&process.addr).await;
        process
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let _ = self.child.wait();
    }
}

/// A test that fails half-way still stops the daemon it started.
impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// target/<profile>/nodekitd, beside the test binary's deps directory.
fn nodekitd_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = dir.join("nodekitd");
    assert!(
        binary.exists(),
        "{} is missing: build nodekitd first (cargo build -p nodekitd)",
        binary.display()
    );
    binary
}

#[tokio::test]
async fn kill_9_mid_build_leaves_a_consistent_index_and_no_orphans() {
    let root = tempfile::tempdir().expect("a root");
    let process = Process::start(root.path()).await;
    let dockerfile = format!(
        "FROM {}\nARG NONCE\nRUN echo $NONCE > /one\nRUN sleep 0.3 && date > /two\nRUN sleep 0.3 && date > /three\nRUN sleep 5 && date > /four\n",
        TestEnv::get().local_image
    );
    let dir = context(&dockerfile, &[]);
    let nonce = unique();
    let args = [("NONCE", nonce.as_str())];
    let daemon = nodekit_test_support::TestDaemon::attach(&process.addr, root.path());
    let build = build_dockerfile(&daemon, dir.path(), &args, None);
    let killed = async {
        tokio::time::sleep(Duration::from_millis(2000)).await;
        process.kill_9();
    };
    let (interrupted, ()) = tokio::join!(build, killed);
    assert!(interrupted.result.is_err(), "the build was cut short");

    let process = Process::start(root.path()).await;
    let rebuilt = build_dockerfile(&daemon, dir.path(), &args, None).await;
    rebuilt
        .result
        .as_ref()
        .expect("the build after the restart");
    assert!(
        rebuilt.steps().iter().any(|s| s.cached),
        "steps finished before the kill are cached: {:?}",
        rebuilt.ran()
    );
    process.terminate();
    assert_consistent(root.path()).await;
    // The killed run's host mounts were undone by the restart, the restarted run's by its stop.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root_text = root.path().display().to_string();
    let left: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| p.starts_with(&root_text))
        })
        .collect();
    assert!(
        left.is_empty(),
        "mounts left under the daemon's root: {left:#?}"
    );
}

/// Every record names a snapshot and a lease containerd has; every cache lease of this
/// daemon is a record's; no step lease of it is left.
async fn assert_consistent(root: &Path) {
    let store = cachestore::Store::open(root.join("cache/index.redb")).expect("the index opens");
    let records = store.records().expect("records");
    assert!(!records.is_empty());
    let owner = format!(
        "nodekitd-{}",
        std::fs::read_to_string(root.join("worker-id"))
            .expect("worker id")
            .trim()
    );
    let env = TestEnv::get();
    let cache_leases = leases_labelled(nodekitd::worker::cache_leases::CACHE_OWNER_LABEL, &owner);
    let recorded: HashSet<String> = records.iter().map(|r| r.lease.clone()).collect();
    assert_eq!(
        cache_leases, recorded,
        "cache leases are exactly the records'"
    );
    for record in &records {
        let info = ctr(env, &["snapshots", "info", &record.snapshot]);
        assert!(
            info.status.success(),
            "record {} names a lost snapshot {}",
            record.key,
            record.snapshot
        );
    }
    let step_leases = leases_labelled(nodekitd::worker::leases::OWNER_LABEL, &owner);
    assert!(step_leases.is_empty(), "step leases left: {step_leases:?}");
    let filter = format!(
        "labels.\"{}\"=={owner}",
        nodekitd::worker::leases::OWNER_LABEL
    );
    let containers = ctr(env, &["containers", "ls", "-q", &filter]);
    let containers = String::from_utf8_lossy(&containers.stdout)
        .trim()
        .to_string();
    assert!(containers.is_empty(), "step containers left: {containers}");
}
