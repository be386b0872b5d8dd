//! Looking at a built image the way the node does: `ctr` against the test containerd, in its
//! namespace (reading content blobs, running containers).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nodekit_test_support::TestEnv;

/// The result of one `ctr` call.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ctr` (async, killed after `timeout`).
pub async fn ctr(args: &[&str], timeout: Duration) -> Result<Output> {
    let env = TestEnv::get();
    let mut command = tokio::process::Command::new("ctr");
    command
        .arg("--address")
        .arg(&env.socket)
        .arg("-n")
        .arg(&env.namespace)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| anyhow!("ctr {} timed out after {timeout:?}", args.join(" ")))?
        .context("running ctr")?;
    Ok(Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A content blob (manifest, config) as JSON.
pub async fn blob_json(digest: &str) -> Result<serde_json::Value> {
    let out = ctr(&["content", "get", digest], Duration::from_secs(30)).await?;
    if out.code != 0 {
        bail!("ctr content get {digest}: {}", out.stderr.trim());
    }
    serde_json::from_str(&out.stdout).with_context(|| format!("blob {digest} is not JSON"))
}

/// The image config of the build's result: from the exporter's response
/// (`containerimage.config.digest`), else through the manifest (or the host platform's entry of
/// an index) it names.
pub async fn config(response: &BTreeMap<String, String>) -> Result<serde_json::Value> {
    if let Some(digest) = response.get("containerimage.config.digest") {
        return blob_json(digest).await;
    }
    let Some(digest) = response.get("containerimage.digest") else {
        bail!(
            "the exporter response names no image (keys: {:?})",
            response.keys().collect::<Vec<_>>()
        );
    };
    let mut manifest = blob_json(digest).await?;
    if let Some(entries) = manifest["manifests"].as_array() {
        let arch = crate::host_arch();
        let entry = entries
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .or(entries.first())
            .ok_or_else(|| anyhow!("index {digest} is empty"))?;
        let digest = entry["digest"].as_str().unwrap_or_default().to_string();
        manifest = blob_json(&digest).await?;
    }
    match manifest["config"]["digest"].as_str() {
        Some(config) => blob_json(config).await,
        None => bail!("manifest {digest} has no config"),
    }
}

/// Runs `cmd` (the image's own entrypoint and cmd when empty) in a container of `image`.
pub async fn run(image: &str, cmd: &[String]) -> Result<Output> {
    let id = format!("nodekit-dfconf-{:08x}", rand::random::<u32>());
    let mut args = vec!["run", "--rm", image, id.as_str()];
    args.extend(cmd.iter().map(String::as_str));
    ctr(&args, Duration::from_secs(120)).await
}
