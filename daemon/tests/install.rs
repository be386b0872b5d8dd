//! The install files as a node's tools read them: `systemd-analyze verify` accepts the unit
//! (with ExecStart pointing at the nodekitd this build made, since verify checks that the
//! program is there).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::process::Command;

const INSTALLED_BINARY: &str = "/usr/local/bin/nodekitd";

#[test]
fn systemd_accepts_the_unit() {
    let unit_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../install/systemd/nodekitd.service"
    );
    let unit = std::fs::read_to_string(unit_path).unwrap();
    assert!(
        unit.contains(INSTALLED_BINARY),
        "the unit starts {INSTALLED_BINARY}"
    );
    let dir = tempfile::tempdir().unwrap();
    let here = unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_nodekitd"));
    let copy = dir.path().join("nodekitd.service");
    std::fs::write(&copy, here).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (tests/env/install.sh installs systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // verify also reports units the host lacks (containerd.service on a test machine); only
    // what it says about this unit matters.
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("nodekitd.service") || l.contains(&*copy.to_string_lossy()))
        .collect();
    assert!(output.status.success() && about_ours.is_empty(), "{stderr}");
}
