//! A real nodekitd process (the binary cargo built), for what needs one: a `kill -9`, or the
//! process's own figures (resident memory, file descriptors, mounts, tokio tasks) under load.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::{free_loopback_addr, http_get, wait_serving, TestEnv};

/// How the process listens: on a unix socket in its root, or over tcp with a debug listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Unix,
    TcpWithDebug,
}

pub struct DaemonProcess {
    child: Child,
    pub addr: String,
    pub root: PathBuf,
    /// The debug listener (`/metrics`), when started with one.
    pub debug_addr: Option<SocketAddr>,
}

impl DaemonProcess {
    /// Starts `binary` on `root` (kept across restarts) on the test containerd; waits until it
    /// serves. Its log goes to `root/nodekitd.log`.
    pub async fn start(binary: &Path, root: &Path, listen: Listen) -> DaemonProcess {
        DaemonProcess::start_in(binary, root, listen, &TestEnv::get().namespace).await
    }

    /// As [`DaemonProcess::start`], on containerd's `namespace`.
    pub async fn start_in(
        binary: &Path,
        root: &Path,
        listen: Listen,
        namespace: &str,
    ) -> DaemonProcess {
        let (addr, debug_addr) = match listen {
            Listen::Unix => {
                let _ = std::fs::remove_file(root.join("nodekitd.sock"));
                let socket = root.join("nodekitd.sock");
                (format!("unix://{}", socket.display()), None)
            }
            Listen::TcpWithDebug => (
                format!("tcp://{}", free_loopback_addr()),
                Some(free_loopback_addr()),
            ),
        };
        let mut command = nodekitd_command(binary, root, namespace, &addr);
        if let Some(debug) = debug_addr {
            command.arg("--debugaddr").arg(debug.to_string());
        }
        let child = command.spawn().expect("nodekitd starts");
        let process = DaemonProcess {
            child,
            addr,
            root: root.to_path_buf(),
            debug_addr,
        };
        wait_serving(&process.addr).await;
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to end.
    pub fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let _ = self.child.wait();
    }

    /// The process's figures now; tasks only with a debug listener.
    pub fn figures(&self) -> Figures {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process's status");
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Figures {
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
            anon_rss_kib: kib("RssAnon:"),
            file_rss_kib: kib("RssFile:"),
            fds: std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
                .map(|d| d.count())
                .unwrap_or(0),
            mounts: mounts_under(&self.root),
            tasks: self.debug_addr.and_then(alive_tasks),
        }
    }
}

/// A test that fails half-way still stops the daemon it started.
impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a daemon process holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    /// VmRSS.
    pub rss_kib: u64,
    /// VmHWM: the highest resident memory so far.
    pub peak_rss_kib: u64,
    /// RssAnon: the heap and stacks (redb's page cache among them).
    pub anon_rss_kib: u64,
    /// RssFile: file pages mapped, nearly all nodekitd's own code as builds use it (clean, so
    /// the kernel can take them back).
    pub file_rss_kib: u64,
    pub fds: usize,
    /// Host mounts under the daemon's root (the snapshots it mounts itself).
    pub mounts: usize,
    /// `nodekit_tokio_alive_tasks` of its `/metrics`.
    pub tasks: Option<u64>,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tasks = self.tasks.map_or("?".to_string(), |t| t.to_string());
        write!(
            f,
            "rss {} MiB ({:.1} anon, {:.1} file; peak {} MiB), fds {}, tasks {tasks}, mounts {}",
            self.rss_kib / 1024,
            self.anon_rss_kib as f64 / 1024.0,
            self.file_rss_kib as f64 / 1024.0,
            self.peak_rss_kib / 1024,
            self.fds,
            self.mounts
        )
    }
}

/// Host mounts whose mount point is under `root`.
pub fn mounts_under(root: &Path) -> usize {
    mountinfo_under(root).len()
}

/// The mountinfo lines of the host mounts whose mount point is under `root`.
pub fn mountinfo_under(root: &Path) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = root.display().to_string();
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&root)))
        .map(String::from)
        .collect()
}

/// A value of the daemon's `/metrics`: the sample named `name` (labels included, as printed).
pub fn metric(debug_addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = http_get(debug_addr, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn alive_tasks(debug_addr: SocketAddr) -> Option<u64> {
    metric(debug_addr, "nodekit_tokio_alive_tasks").map(|v| v as u64)
}

/// `binary` on `root` and containerd's `namespace`, listening on `addr`, its log appended to
/// `root/nodekitd.log` (a restarted daemon's log follows the killed one's).
pub fn nodekitd_command(binary: &Path, root: &Path, namespace: &str, addr: &str) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("nodekitd.log"))
        .expect("a log file");
    let mut command = Command::new(binary);
    command
        .arg("--root")
        .arg(root)
        .arg("--addr")
        .arg(addr)
        .arg("--containerd-worker-addr")
        .arg(&TestEnv::get().socket)
        .arg("--containerd-worker-namespace")
        .arg(namespace)
        .stderr(log);
    command
}

/// target/<profile>/nodekitd, beside the test binary's deps directory.
pub fn nodekitd_binary() -> PathBuf {
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
