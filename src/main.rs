//! `tmf635`: reads the configuration, starts logging, serves until SIGTERM or Ctrl-C; or, with
//! a command (`import`, `export`), runs it as a client of a server (`tmf635::cli`).

#![forbid(unsafe_code)]

use clap::Parser;
use tmf635::app::{shutdown_signal, App};
use tmf635::Config;

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
async fn main() -> std::process::ExitCode {
    let mut config = Config::parse();
    if let Some(command) = config.command.take() {
        return tmf635::cli::run(command, &config).await;
    }
    tmf635::ops::init_logging(&config.log, config.ops.log_format);
    start_returning_freed_memory();
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
    std::process::ExitCode::SUCCESS
}
