//! Worker benchmark against the real test containerd (run through bench/run.sh): the phases of
//! one build step, median of N runs, and the resident memory of an idle nodekitd.
//!
//! Usage: worker-bench [RUNS] [NODEKITD_BINARY]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::DeleteImageRequest;
use nodekit_test_support::TestEnv;
use nodekitd::oci::Platform;
use nodekitd::worker::exec::{NetworkMode, ProcessSpec};
use nodekitd::worker::{Compression, ExecRequest, ImageWrite, ManifestFormat, NewLayer, Worker};
use tokio_util::sync::CancellationToken;

const PHASES: [&str; 7] = [
    "resolve (image store)",
    "resolve (registry pull)",
    "unpack (already unpacked)",
    "prepare snapshot",
    "run one step",
    "commit + gzip layer",
    "write image",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let nodekitd = args.next().map(PathBuf::from);
    let env = TestEnv::get();
    let worker = env.worker("bench").await;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); PHASES.len()];
    for run in 0..runs {
        let timings = one_build(&worker, env, run).await?;
        for (phase, took) in timings.into_iter().enumerate() {
            samples[phase].push(took);
        }
    }
    println!("worker phases, median of {runs} (min..max):");
    for (name, mut times) in PHASES.iter().zip(samples) {
        times.sort();
        let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
        println!(
            "  {name:<28} {:>9.2} ms  ({:.2}..{:.2})",
            ms(median),
            ms(min),
            ms(max)
        );
    }
    if let Some(binary) = nodekitd {
        let rss = idle_rss(&binary, env).await?;
        println!(
            "idle nodekitd resident memory: {:.1} MiB ({})",
            rss as f64 / 1024.0,
            binary.display()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn timed<T>(times: &mut Vec<Duration>, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let value = work.await;
    times.push(started.elapsed());
    value
}

async fn one_build(worker: &Worker, env: &TestEnv, run: usize) -> anyhow::Result<Vec<Duration>> {
    let mut t = Vec::new();
    let platform = Platform::native();
    let lease = worker.lease("bench").await?;
    let base = timed(&mut t, worker.resolve_image(&env.local_image, &platform)).await?;
    forget_image(worker, &env.registry_image).await;
    timed(&mut t, worker.resolve_image(&env.registry_image, &platform)).await?;
    let top = timed(&mut t, worker.unpack(&lease, &base)).await?;
    let rootfs = timed(&mut t, worker.prepare(&lease, top.as_deref())).await?;
    let script = format!("echo run {run} > /bench; date >> /bench");
    let request = ExecRequest {
        rootfs: rootfs.clone(),
        process: ProcessSpec {
            args: vec!["sh".into(), "-c".into(), script.clone()],
            ..Default::default()
        },
        mounts: Vec::new(),
        network: NetworkMode::Host,
        sandbox: Default::default(),
        emulator: None,
    };
    let outcome = timed(&mut t, worker.exec(request, None, CancellationToken::new())).await?;
    anyhow::ensure!(outcome.exit_code == 0, "bench step failed");
    let layer = timed(
        &mut t,
        worker.commit_layer(&lease, rootfs, Compression::Gzip),
    )
    .await?;
    let write = ImageWrite {
        names: vec!["nodekit.test/bench:latest".into()],
        base: Some(&base),
        platform,
        layers: vec![NewLayer {
            layer,
            created_by: script,
        }],
        config: None,
        full_config: None,
        format: ManifestFormat::Oci,
        annotations: Default::default(),
        base_layers: None,
    };
    timed(&mut t, worker.write_image(&lease, &write)).await?;
    lease.release().await?;
    Ok(t)
}

/// Deletes an image and (synchronously) what only it held, so the next resolve must pull.
async fn forget_image(worker: &Worker, name: &str) {
    let _ = ImagesClient::new(worker.channel().clone())
        .delete(worker.ctx().request(DeleteImageRequest {
            name: name.into(),
            sync: true,
            target: None,
        }))
        .await;
}

/// Starts nodekitd on the test containerd, lets it settle, reads VmRSS (KiB), stops it by PID.
async fn idle_rss(binary: &PathBuf, env: &TestEnv) -> anyhow::Result<u64> {
    let root = env.state.join("bench-nodekitd");
    let mut child = std::process::Command::new(binary)
        .arg("--root")
        .arg(&root)
        .arg("--addr")
        .arg(format!("unix://{}", root.join("nodekitd.sock").display()))
        .arg("--containerd-worker-addr")
        .arg(&env.socket)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    child.kill()?;
    child.wait()?;
    let _ = std::fs::remove_dir_all(&root);
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for nodekitd"))
}
