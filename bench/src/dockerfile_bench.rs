//! Dockerfile frontend benchmark: parse and convert (to a marshalled LLB definition) a
//! generated Dockerfile of N instructions over several stages, median of RUNS. Pure CPU: base
//! image configs come from a fixed config instead of the image store.
//!
//! Usage: dockerfile-bench [RUNS] [INSTRUCTIONS] [SHAPE]
//! SHAPE: `mixed` (the default) or one of a long file's shapes (issue 18: the cost must grow
//! about linearly with the file): `env`, `arg`, `label`, `run`, `workdir` (one stage of
//! INSTRUCTIONS such lines), `stages` (INSTRUCTIONS stages, each FROM the one before),
//! `copy-from` (each copying from the one before), `env-stages` (INSTRUCTIONS/2 ENV lines, then
//! INSTRUCTIONS/2 stages, each FROM the one before: every stage inherits the whole environment).

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use nodekitd::frontend::dockerfile::convert::{convert, BaseImages, ConvertRequest};
use nodekitd::frontend::dockerfile::options::Options;
use nodekitd::oci::Platform;
use nodekitd::solver::SolveError;

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#;

struct FixedBase;

impl BaseImages for FixedBase {
    fn config<'a>(
        &'a self,
        reference: &'a str,
        _: &'a Platform,
    ) -> BoxFuture<'a, Result<(String, Vec<u8>), SolveError>> {
        async move { Ok((reference.to_string(), CONFIG.to_vec())) }.boxed()
    }
}

/// A Dockerfile of `count` lines of one of the long shapes, None for another name.
fn long_dockerfile(shape: &str, count: usize) -> Option<String> {
    if shape == "env-stages" {
        let env = long_dockerfile("env", count / 2)?;
        let stages = long_dockerfile("stages", count / 2)?;
        return Some(env + stages.split_once('\n').map_or("", |(_, rest)| rest));
    }
    let line: fn(usize) -> String = match shape {
        "env" => |i| format!("ENV V{i}=value-{i}\n"),
        "arg" => |i| format!("ARG A{i}=value-{i}\n"),
        "label" => |i| format!("LABEL l{i}=\"label {i}\"\n"),
        "run" => |i| format!("RUN echo {i}\n"),
        "workdir" => |i| format!("WORKDIR /w{i}\n"),
        "stages" => |i| format!("FROM s{i} AS s{}\n", i + 1),
        "copy-from" => |i| format!("FROM s{i} AS s{}\nCOPY --from=s{i} /f /f{i}\n", i + 1),
        _ => return None,
    };
    let mut text = String::from("FROM example.com/base:1 AS s0\n");
    for i in 0..count {
        text.push_str(&line(i));
    }
    Some(text)
}

/// A Dockerfile of `count` instructions in 10 stages, each stage copying from the previous one.
fn dockerfile(count: usize) -> String {
    let per_stage = count / 10;
    let mut text = String::from("ARG BASE=example.com/base:1\n");
    for stage in 0..10 {
        text.push_str(&format!("FROM ${{BASE}} AS s{stage}\n"));
        for i in 0..per_stage.saturating_sub(1) {
            text.push_str(&match i % 6 {
                0 => format!("ENV V{i}=value-{i} P{i}=${{V{i}}}-x\n"),
                1 => format!("RUN echo step {i} > /f{i} && cat /f{i}\n"),
                2 => format!("COPY src/file{i}.txt /dst/\n"),
                3 => format!("WORKDIR /w/{i}\n"),
                4 => format!("LABEL l{i}=\"label {i}\"\n"),
                _ if stage > 0 => format!("COPY --from=s{} /f0 /from-{i}\n", stage - 1),
                _ => format!("ARG A{i}=default-{i}\n"),
            });
        }
    }
    text
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let text = match args.next().as_deref() {
        None | Some("mixed") => dockerfile(count),
        Some(shape) => {
            long_dockerfile(shape, count).ok_or_else(|| anyhow::anyhow!("unknown shape {shape}"))?
        }
    };
    let options = Options::parse(&Default::default())?;
    let platform = Platform::native();
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let parsed = nodekit_dockerfile::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let request = ConvertRequest {
            dockerfile: &parsed,
            file: "Dockerfile",
            options: &options,
            ignore: &[],
            platform: &platform,
            build_platform: &platform,
            bases: &FixedBase,
            inputs: &Default::default(),
        };
        let converted = convert(&request).await?;
        let definition = nodekit_llb_builder::marshal(&converted.state)?;
        times.push(started.elapsed());
        assert!(!definition.def.is_empty());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let lines = text.lines().count();
    println!(
        "dockerfile parse + convert + marshal, {lines} instructions, median of {runs}: {:.1} ms ({:.1}..{:.1})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    Ok(())
}
