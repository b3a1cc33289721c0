//! `tmf635`: reads the configuration, starts logging, serves until SIGTERM or Ctrl-C.

use clap::Parser;
use tmf635::app::{shutdown_signal, App};
use tmf635::Config;

/// jemalloc: a create allocates and frees a few hundred small values (JSON trees, SQL,
/// buffers), and under load glibc's malloc was a quarter of the server's CPU.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: one background thread returns pages freed for over
/// a second to the system, so an idle server gives back what start-up and load used (idle RSS
/// ~25 MB; by default freed pages stay resident until the next allocations).
#[export_name = "_rjem_malloc_conf"]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8; 85] =
    b"background_thread:true,max_background_threads:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[tokio::main]
async fn main() {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .init();
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
