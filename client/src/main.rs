//! `nodekit`: the command-line client of nodekitd.

mod cli_build;

use nodekit::connect::{self, ClientTls, Target};
use nodekit::control;

use std::path::PathBuf;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nodekit_proto::nodekit::cache::v1::ExportRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[derive(Debug, Parser)]
#[command(
    name = "nodekit",
    version,
    about = "Client of nodekitd, the node-local BuildKit-compatible builder"
)]
struct Cli {
    /// nodekitd address: unix:///path or tcp://host:port.
    #[arg(
        long,
        env = "BUILDKIT_HOST",
        default_value = "unix:///run/nodekit/nodekitd.sock"
    )]
    addr: String,
    /// CA certificate (PEM) the daemon's TLS certificate must be signed by.
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    /// Client certificate (PEM), for a daemon that requires one.
    #[arg(long, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    /// Client key (PEM) of --tlscert.
    #[arg(long, value_name = "FILE")]
    tlskey: Option<PathBuf>,
    /// Name the daemon's certificate must carry (default: the address's host).
    #[arg(long, value_name = "NAME")]
    tlsservername: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Whether nodekitd is serving (it is once its containerd answers); exit 0 only then.
    Health {
        /// Keep asking until it serves or this many seconds pass.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// List the daemon's workers (like `buildctl debug workers -v`).
    Workers,
    /// Show build cache disk usage (like `buildctl du`).
    Du,
    /// Build an LLB definition or a frontend's input, like `buildctl build`.
    Build(cli_build::BuildArgs),
    /// Remove build cache records (like `buildctl prune`).
    Prune {
        /// Remove every record, not only unused ones.
        #[arg(long)]
        all: bool,
    },
    /// Move a node's build cache to another node (or keep it) as a bundle file.
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Write the node's cache records and the blobs they need as one bundle.
    Export {
        /// Export only records matching a filter, as `buildctl du --filter` takes them
        /// (`type==regular`, `description~=RUN`); repeat for any of several.
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        /// Export only the records build REF used (one of the daemon's recent builds; `nodekit
        /// build --ref-file` and `buildctl build --ref-file` write a build's reference).
        #[arg(long = "build", value_name = "REF")]
        build: Option<String>,
        /// The bundle file (`-`: standard output, the default).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Read a bundle into the node's cache: all of it, or nothing if any of it is wrong.
    Import {
        /// The bundle file (`-` or none: standard input).
        input: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = cli.target();
    let result = match cli.command {
        Command::Health { wait } => health(&target, Duration::from_secs(wait)).await,
        Command::Workers => control::workers(&target).await.map(|_| ExitCode::SUCCESS),
        Command::Build(args) => cli_build::run(&target, args)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Du => control::disk_usage(&target)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Prune { all } => control::prune(&target, all)
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Cache(command) => cache(&target, command).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("nodekit: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error as a user reads it: a daemon's refusal by its message alone (tonic's own
/// rendering leads with the gRPC code's description), anything else with its causes.
fn describe(error: &anyhow::Error) -> String {
    match error.downcast_ref::<tonic::Status>() {
        Some(status) if error.chain().count() == 1 => status.message().to_string(),
        _ => format!("{error:#}"),
    }
}

impl Cli {
    fn target(&self) -> Target {
        let any_tls = self.tlscacert.is_some()
            || self.tlscert.is_some()
            || self.tlskey.is_some()
            || self.tlsservername.is_some();
        Target {
            addr: self.addr.clone(),
            tls: any_tls.then(|| ClientTls {
                ca: self.tlscacert.clone(),
                cert: self.tlscert.clone(),
                key: self.tlskey.clone(),
                server_name: self.tlsservername.clone(),
            }),
        }
    }
}

async fn cache(target: &Target, command: CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Export {
            filters,
            build,
            output,
        } => {
            let request = ExportRequest {
                filters,
                build_ref: build.unwrap_or_default(),
            };
            let summary = nodekit::cache::export(target, request, output.as_deref()).await?;
            eprintln!(
                "exported {} records and {} blobs",
                summary.records, summary.blobs
            );
            for skipped in &summary.skipped {
                eprintln!("left out {skipped}");
            }
        }
        CacheCommand::Import { input } => {
            let answer = nodekit::cache::import(target, input.as_deref()).await?;
            eprintln!(
                "imported {} records ({} were here already); blobs: {} written, {} here already",
                answer.records_imported,
                answer.records_present,
                answer.blobs_written,
                answer.blobs_present
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn health(target: &Target, wait: Duration) -> anyhow::Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let answer = check_health(target).await;
        let serving = matches!(&answer, Ok(status) if status == "SERVING");
        if serving || tokio::time::Instant::now() >= deadline {
            println!("{}", answer?);
            return Ok(if serving {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn check_health(target: &Target) -> anyhow::Result<String> {
    let channel = connect::open(target).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(response.into_inner().status().as_str_name().to_string())
}
