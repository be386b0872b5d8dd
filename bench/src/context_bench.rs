//! Context transfer benchmark (run through bench/run.sh): a local source of 20,000 small files
//! solved through a real session against an in-process nodekitd on the test containerd, first
//! with a fresh copy, then again unchanged. Median of N runs.
//!
//! Usage: context-bench [RUNS] [FILES]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use nodekit::build::{build, BuildRequest};
use nodekit::session::SessionServices;
use nodekit_llb_builder::{marshal, Local};
use nodekit_test_support::TestDaemon;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let files: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let context = tempfile::tempdir()?;
    make_tree(context.path(), files)?;
    let daemon = TestDaemon::start("context-bench").await;
    let (mut first, mut unchanged) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // A new shared key per run: nodekitd keeps no copy for it, so the first sync is whole.
        let key = format!("context-bench-{}-{run}", std::process::id());
        first.push(sync(&daemon, context.path(), &key).await?);
        unchanged.push(sync(&daemon, context.path(), &key).await?);
    }
    daemon.stop().await;
    println!("context sync of {files} small files, median of {runs} (min..max):");
    report("first (whole transfer)", first);
    report("unchanged (nothing sent)", unchanged);
    Ok(())
}

fn make_tree(root: &Path, files: usize) -> std::io::Result<()> {
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i % 200));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("f{i:05}.txt")), format!("file {i}\n"))?;
    }
    Ok(())
}

/// One build whose result is the local source itself: the time of the whole solve.
async fn sync(daemon: &TestDaemon, dir: &Path, key: &str) -> anyhow::Result<Duration> {
    let state = Local::new("context").shared_key_hint(key).into_state();
    let request = BuildRequest {
        definition: Some(marshal(&state)?),
        services: SessionServices {
            locals: BTreeMap::from([("context".to_string(), dir.to_path_buf())]),
            ..Default::default()
        },
        ..Default::default()
    };
    let started = Instant::now();
    build(daemon.channel().await, request, |_| {}).await?;
    Ok(started.elapsed())
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
    println!(
        "  {name:<26} {:>9.1} ms  ({:.1}..{:.1})",
        ms(median),
        ms(min),
        ms(max)
    );
}
