//! A containerd of one test's own (`install/local/private-containerd.sh` in a directory of its
//! own, its own socket), with the tests' base image imported, that the test may stop, kill and
//! start again as an upgrade or a crash would, never touching the shared one. Stopped (its
//! shims and containers too, by the PIDs the script finds) and its directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::TestEnv;

/// The namespace builds use there: not the shared containerd's, so the runc state and cgroups
/// its shims share with the shared containerd's (`/run/containerd/runc/<ns>/`) stay apart.
const NAMESPACE: &str = "nodekit-faults";

pub struct PrivateContainerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub namespace: String,
    /// Whether `dir` is ours to remove on drop (not when it lives on a caller's filesystem).
    owns_dir: bool,
}

impl PrivateContainerd {
    /// Starts one for `test` in a fresh directory under /var/tmp (short enough for the socket
    /// path), with the tests' base image imported.
    pub fn start(test: &str) -> PrivateContainerd {
        let dir = PathBuf::from(format!(
            "/var/tmp/nodekit-ctrd-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        PrivateContainerd::start_owned(dir, true)
    }

    /// Starts one whose whole world is `dir` (e.g. on a small filesystem), left in place on drop.
    pub fn start_in(dir: &Path) -> PrivateContainerd {
        PrivateContainerd::start_owned(dir.to_path_buf(), false)
    }

    fn start_owned(dir: PathBuf, owns_dir: bool) -> PrivateContainerd {
        std::fs::create_dir_all(&dir).expect("the private containerd's directory");
        let containerd = PrivateContainerd {
            socket: dir.join("containerd.sock"),
            dir,
            namespace: NAMESPACE.to_string(),
            owns_dir,
        };
        containerd.start_again();
        containerd.import_base_image();
        containerd
    }

    /// Starts containerd (again) and waits until it answers. Tasks left running by a killed
    /// containerd are picked up from their shims, as after a real restart.
    pub fn start_again(&self) {
        self.script("start");
    }

    /// Stops containerd alone, as `systemctl stop containerd` does (SIGTERM to its PID, waiting
    /// until it is gone): shims and their containers go on running.
    pub fn stop_daemon(&self) {
        let pid = self.pid().expect("containerd runs");
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            if Instant::now() > deadline {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`PrivateContainerd::stop_daemon`] then [`PrivateContainerd::start_again`].
    pub fn restart(&self) {
        self.stop_daemon();
        self.start_again();
    }

    /// containerd's PID (from the script's pid file) while it runs.
    pub fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join("containerd.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        std::path::Path::new(&format!("/proc/{pid}"))
            .exists()
            .then_some(pid)
    }

    /// `ctr` with `args` in the namespace builds use.
    pub fn ctr(&self, args: &[&str]) -> Output {
        std::process::Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .arg("-n")
            .arg(&self.namespace)
            .args(args)
            .output()
            .expect("ctr runs")
    }

    /// The first column of `ctr <object> ls -q` (ids), empty when containerd does not answer.
    pub fn ids(&self, object: &str) -> Vec<String> {
        let listed = self.ctr(&[object, "ls", "-q"]);
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The tests' base image (`TestEnv::local_image`), from the archive `tests/env/up.sh` made.
    fn import_base_image(&self) {
        let env = TestEnv::get();
        let archive = base_image_archive(env);
        let imported = self.ctr(&["images", "import", "--all-platforms", &archive]);
        assert!(
            imported.status.success(),
            "importing {archive}: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }

    fn script(&self, action: &str) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/local/private-containerd.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg(action)
            .arg(&self.dir)
            .output()
            .expect("private-containerd.sh runs");
        assert!(
            output.status.success(),
            "private-containerd.sh {action} {}: {}",
            self.dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The archive of the base image, as `tests/env/base-images.sh` lists it in `images.tsv`.
fn base_image_archive(env: &TestEnv) -> String {
    let listing = env.state.join("images/images.tsv");
    let text = std::fs::read_to_string(&listing)
        .unwrap_or_else(|e| panic!("{}: {e}; run tests/env/up.sh", listing.display()));
    text.lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&env.local_image.as_str()))
        .and_then(|fields| fields.get(1).map(|archive| archive.to_string()))
        .unwrap_or_else(|| panic!("{} lists no {}", listing.display(), env.local_image))
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        // Not self.script: a failed stop must not panic while a test's failure unwinds.
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/local/private-containerd.sh");
        let stopped = std::process::Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&self.dir)
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!("private containerd in {} did not stop", self.dir.display());
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
