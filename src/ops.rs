//! The settings of running the server under an orchestrator (logs, metrics, draining) and
//! the log subscriber they choose.

use clap::{Args, ValueEnum};

#[derive(Args, Debug, Clone)]
pub struct OpsConfig {
    /// Log format: `text` (one human-readable line per event) or `json` (one JSON object per
    /// line, for a log collector).
    #[arg(long, env = "TMF635_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve `/metrics` on this address too (e.g. `0.0.0.0:4000`), beside the API's.
    #[arg(long, env = "TMF635_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// On SIGTERM, readiness answers 503 for this long, in milliseconds, while requests are
    /// still served, so an orchestrator stops routing here before the listener closes.
    #[arg(long, env = "TMF635_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,

    /// At shutdown, time requests and deliveries in flight get to finish, in milliseconds;
    /// deliveries still sending then are handed back to the queue.
    #[arg(long, env = "TMF635_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the process's log subscriber: `filter` (tracing-subscriber syntax) in `format`.
pub fn init_logging(filter: &str, format: LogFormat) {
    let builder =
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
