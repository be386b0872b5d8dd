//! The real nodekitd process of the crash and damaged-index tests (support's `DaemonProcess`,
//! on a unix socket), and a start that is expected to fail.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nodekit_test_support::{nodekitd_binary, nodekitd_command, DaemonProcess, Listen, TestEnv};

/// nodekitd on `root`, on the test containerd's namespace, once it serves.
pub async fn start(root: &Path) -> DaemonProcess {
    start_in(root, &TestEnv::get().namespace).await
}

/// nodekitd on `root`, on containerd's `namespace`, once it serves.
pub async fn start_in(root: &Path, namespace: &str) -> DaemonProcess {
    DaemonProcess::start_in(&nodekitd_binary(), root, Listen::Unix, namespace).await
}

/// Starts nodekitd on `root` expecting it to stop by itself (within 30 s): its exit status and
/// what it logged (not what earlier daemons of `root` did).
pub fn run_to_exit(root: &Path) -> (ExitStatus, String) {
    let logged_before = std::fs::metadata(root.join("nodekitd.log")).map_or(0, |m| m.len());
    let addr = format!("unix://{}", root.join("nodekitd.sock").display());
    let namespace = &TestEnv::get().namespace;
    let mut child = nodekitd_command(&nodekitd_binary(), root, namespace, &addr)
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
