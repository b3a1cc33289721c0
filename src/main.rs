//! `tmf635`: reads the configuration, starts logging, serves until SIGTERM or Ctrl-C.

#![forbid(unsafe_code)]

use clap::Parser;
use tmf635::app::{shutdown_signal, App};
use tmf635::Config;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// jemalloc: a create allocates and frees a few hundred small values (JSON trees, SQL,
/// buffers), which glibc's malloc handles at a much higher CPU cost.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One jemalloc background thread returns freed pages to the system after jemalloc's decay
/// time, so an idle server gives back what start-up and load used (without it, freed pages
/// stay resident until the next allocations).
fn start_returning_freed_memory() {
    let started = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(e) = started {
        tracing::warn!("jemalloc's background thread did not start: {e}");
    }
}

#[tokio::main]
async fn main() {
    let config = Config::parse();
    // A subcommand's own output (a new API key) is the only thing on its stdout.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(if config.command.is_some() {
            BoxMakeWriter::new(std::io::stderr)
        } else {
            BoxMakeWriter::new(std::io::stdout)
        })
        .init();
    start_returning_freed_memory();
    if let Some(command) = &config.command {
        std::process::exit(tmf635::cli::run(command, &config).await);
    }
    let app = match App::build(&config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Some(addr) = app.local_addr() {
        tracing::info!(%addr, "tmf635 listening; Swagger UI at /swagger-ui/");
    }
    if let Err(e) = app.run(shutdown_signal()).await {
        tracing::error!("server failed: {e}");
        std::process::exit(1);
    }
}
