//! Reading install/kubernetes: kustomize's rendering (kubectl's built-in kustomize, or the
//! standalone `kustomize`), its documents as JSON values, and kubernetes-validate.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// install/kubernetes in this checkout.
pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/kubernetes")
}

/// `kustomize build` of `dir` (relative to install/kubernetes).
pub fn render(dir: &str) -> String {
    let path = manifests_dir().join(dir);
    let output = if which("kubectl") {
        Command::new("kubectl").arg("kustomize").arg(&path).output()
    } else {
        Command::new("kustomize").arg("build").arg(&path).output()
    }
    .expect("kubectl or kustomize runs (tests/env/install.sh installs one)");
    let output = succeeded(output, &format!("kustomize {}", path.display()));
    String::from_utf8(output.stdout).unwrap()
}

/// `output` of a command that must have succeeded (`what` it was, with its stderr, otherwise).
pub fn succeeded(output: std::process::Output, what: &str) -> std::process::Output {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The documents of a YAML stream, through Debian's PyYAML (python3-yaml, which
/// tests/env/install.sh installs).
pub fn documents(yaml: &str) -> Vec<Value> {
    let mut child = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "PyYAML read the manifests");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The one document of `kind` (and `name`, if given).
pub fn find<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind)
        .filter(|d| name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name:?} in the manifests");
    found[0]
}

/// `kubernetes-validate --strict` of `file` for Kubernetes `version`: its success and output.
pub fn validate(file: &Path, version: &str) -> (bool, String) {
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", version])
        .arg(file)
        .output()
        .expect("kubernetes-validate runs (tests/env/install.sh installs it from PyPI)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The DaemonSet's one container.
pub fn container(daemonset: &Value) -> &Value {
    let containers = daemonset["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "nodekitd's pod has one container");
    &containers[0]
}

/// The pod's volume named `name`.
pub fn volume<'a>(daemonset: &'a Value, name: &str) -> &'a Value {
    daemonset["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("a volume {name}"))
}

/// The string values of a JSON array.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The nodekitd.toml of the rendered ConfigMap.
pub fn config_toml(docs: &[Value]) -> String {
    find(docs, "ConfigMap", None)["data"]["nodekitd.toml"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs install/kubernetes/certs.sh into `dir`.
pub fn make_certs(dir: &Path) {
    let output = Command::new("bash")
        .arg(manifests_dir().join("certs.sh"))
        .arg("-d")
        .arg(dir)
        .output()
        .unwrap();
    succeeded(output, "certs.sh");
}
