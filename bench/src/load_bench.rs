//! Load benchmark (run through bench/load.sh): a real nodekitd process over tcp, CONCURRENT
//! builds at once from as many client sessions (uncached, sharing steps, cached, with local
//! contexts; tests/support/load.rs), then SEQUENTIAL builds one after the other; prints the
//! daemon's resident memory (VmRSS, and VmHWM for the peak), open fds, tokio tasks and mounts at
//! the start, after each phase, every tenth of the sequential phase and once settled, with the
//! phases' times. Fails if a build fails.
//!
//! Usage: load-bench CONCURRENT SEQUENTIAL NODEKITD_BINARY

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nodekit_test_support::{
    concurrent_builds, sequential_builds, DaemonProcess, Figures, Listen, LoadBuilds, TestDaemon,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let concurrent: usize = args.next().context("CONCURRENT")?.parse()?;
    let sequential: usize = args.next().context("SEQUENTIAL")?.parse()?;
    let binary = PathBuf::from(args.next().context("NODEKITD_BINARY")?);
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    std::fs::create_dir(&root)?;
    let context = tempfile::tempdir()?;
    std::fs::write(context.path().join("file"), "context")?;
    let process = DaemonProcess::start(&binary, &root, Listen::TcpWithDebug).await;
    let marker = format!("{:016x}", rand::random::<u64>());
    let builds = LoadBuilds::new(&marker, context.path());
    builds.warm_up(&process.addr).await?;
    report("start (after warm-up)", &settle(&process).await);

    let started = Instant::now();
    let failed = concurrent_builds(&process.addr, &builds, concurrent).await;
    report_failures("concurrent", &failed)?;
    println!(
        "{concurrent} concurrent builds: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    report("after the concurrent builds", &process.figures());
    report("settled", &settle(&process).await);

    let builds = LoadBuilds::new(&format!("{marker}-seq"), context.path());
    let tenth = (sequential / 10).max(1);
    let started = Instant::now();
    let failed = sequential_builds(&process.addr, &builds, sequential, |i| {
        if (i + 1) % tenth == 0 {
            report(
                &format!("after {} sequential builds", i + 1),
                &process.figures(),
            );
        }
    })
    .await;
    report_failures("sequential", &failed)?;
    let took = started.elapsed();
    println!(
        "{sequential} sequential builds: {:.1} s ({:.0} ms a build)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / sequential.max(1) as f64
    );
    report("settled", &settle(&process).await);
    TestDaemon::attach(&process.addr, &root).prune_all().await;
    report("after prune --all, settled", &settle(&process).await);
    process.terminate();
    Ok(())
}

fn report(when: &str, figures: &Figures) {
    println!("  {when:<36} {figures}");
}

fn report_failures(phase: &str, failed: &[(usize, String)]) -> anyhow::Result<()> {
    if let Some((index, error)) = failed.first() {
        bail!(
            "{} {phase} builds failed, build {index} first: {error}",
            failed.len()
        );
    }
    Ok(())
}

/// The figures after 5 s without builds: connections closed, tasks ended.
async fn settle(process: &DaemonProcess) -> Figures {
    tokio::time::sleep(Duration::from_secs(5)).await;
    process.figures()
}
