use std::process::ExitCode;

use clap::Parser;
use nodekitd::config::{Cli, Config};
use nodekitd::daemon;

fn main() -> ExitCode {
    nodekitd::memory::restart_without_thread_caches();
    nodekitd::memory::tune_allocator();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    let config = match Config::load(Cli::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("nodekitd: {error}");
            return ExitCode::from(2);
        }
    };
    daemon::init_logging(config.debug, config.log_format);
    match daemon::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
