//! A real nodekitd process (the binary cargo built next to the test binary), so that a test can
//! kill it with SIGKILL, stop it with SIGTERM or watch it refuse to start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use nodekit_test_support::{wait_serving, TestEnv};

pub struct Process {
    child: Child,
    pub addr: String,
}

impl Process {
    /// nodekitd on `root`, on the test containerd's namespace, once it serves.
    pub async fn start(root: &Path) -> Process {
        Process::start_in(root, &TestEnv::get().namespace).await
    }

    /// nodekitd on `root`, on containerd's `namespace`, once it serves.
    pub async fn start_in(root: &Path, namespace: &str) -> Process {
        let addr = format!("unix://{}", root.join("nodekitd.sock").display());
        let _ = std::fs::remove_file(root.join("nodekitd.sock"));
        let child = command(root, namespace, &addr)
            .spawn()
            .expect("nodekitd starts");
        let process = Process { child, addr };
        wait_serving(&process.addr).await;
        process
    }

    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    pub fn terminate(mut self) {
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

/// Starts nodekitd on `root` expecting it to stop by itself (within 30 s): its exit status and
/// what it logged (not what earlier daemons of `root` did).
pub fn run_to_exit(root: &Path) -> (ExitStatus, String) {
    let logged_before = std::fs::metadata(root.join("nodekitd.log")).map_or(0, |m| m.len());
    let addr = format!("unix://{}", root.join("nodekitd.sock").display());
    let mut child = command(root, &TestEnv::get().namespace, &addr)
        .spawn()
        .expect("nodekitd starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("nodekitd's status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nodekitd still runs after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read(root.join("nodekitd.log")).expect("nodekitd's log");
    let own = log.get(logged_before as usize..).unwrap_or_default();
    (status, String::from_utf8_lossy(own).into_owned())
}

fn command(root: &Path, namespace: &str, addr: &str) -> Command {
    let mut command = Command::new(nodekitd_binary());
    command
        .arg("--root")
        .arg(root)
        .arg("--addr")
        .arg(addr)
        .arg("--containerd-worker-addr")
        .arg(&TestEnv::get().socket)
        .arg("--containerd-worker-namespace")
        .arg(namespace)
        .stderr(log_file(root));
    command
}

/// `root`/nodekitd.log, appended to, so a restarted daemon's log follows the killed one's.
fn log_file(root: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("nodekitd.log"))
        .expect("a log file")
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
