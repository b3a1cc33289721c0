//! `tmf635`: reads the configuration, starts logging, serves until SIGTERM or Ctrl-C.

use clap::Parser;
use tmf635::app::{shutdown_signal, App};
use tmf635::Config;

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
