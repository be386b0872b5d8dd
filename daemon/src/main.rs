use std::process::ExitCode;

use clap::Parser;
use nodekitd::config::{Cli, Config};
use nodekitd::daemon;

// glibc's malloc keeps the freed memory of a large build (a 20,000-file context) fragmented in
// its arenas: measured 22 MB resident idle, 7 MB of it in use. mimalloc returns it to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::load(Cli::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("nodekitd: {error}");
            return ExitCode::from(2);
        }
    };
    daemon::init_logging(config.debug);
    match daemon::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
