//! Every setting of the server, from flags or the environment (`tmf635 --help` lists them).

use crate::events::egress::Cidrs;
use clap::Parser;
use std::fmt;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "tmf635",
    version,
    about = "TM Forum TMF635 Usage Management API v4.0.0 server"
)]
pub struct Config {
    /// A command instead of serving: `tmf635 import`, `tmf635 export` (clients of a running
    /// server), `tmf635 apikey` (API keys in the configured database).
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,

    /// Address and port to listen on.
    #[arg(long, env = "TMF635_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,

    /// Database: `sqlite://FILE?mode=rwc` (embedded, WAL) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://tmf635.db?mode=rwc"
    )]
    pub database_url: String,

    /// Public base URL used in `href` (e.g. https://usage.example.com). Default: the scheme and
    /// Host of each request.
    #[arg(long, env = "TMF635_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The server is behind a proxy that sets `X-Forwarded-Proto` and `X-Forwarded-Host`:
    /// hrefs follow them (when no public URL is set). Off, those headers are ignored.
    #[arg(long, env = "TMF635_TRUST_FORWARDED_HEADERS", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_headers: bool,

    /// Page size of a list when the request has no `limit`.
    #[arg(long, env = "TMF635_DEFAULT_LIMIT", default_value_t = 100)]
    pub default_limit: u64,

    /// Largest page a list answers; a larger `limit` is capped to it.
    #[arg(long, env = "TMF635_MAX_LIMIT", default_value_t = 1000)]
    pub max_limit: u64,

    /// Largest request body accepted, in bytes; a larger one is answered 413.
    #[arg(long, env = "TMF635_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most operations one JSON Patch may hold; a longer patch is answered 400.
    #[arg(long, env = "TMF635_MAX_PATCH_OPERATIONS", default_value_t = 100)]
    pub max_patch_operations: usize,

    /// Most bytes of documents one list page holds: a page that would hold more is cut short
    /// and answered as a partial page (206) whose Link leads on to the rest.
    #[arg(long, env = "TMF635_MAX_PAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_page_bytes: usize,

    /// Time limit of a request, in milliseconds, from its headers to its answer; past it the
    /// request is answered 503.
    #[arg(long, env = "TMF635_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Time a client may take to send a whole request (headers and body), in milliseconds,
    /// counted from its first byte; past it the connection is closed.
    #[arg(long, env = "TMF635_REQUEST_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_read_timeout_ms: u64,

    /// A connection on which nothing is sent or received for this long, in milliseconds, is
    /// closed.
    #[arg(long, env = "TMF635_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// Requests this instance answers at once; more are answered 503 with `Retry-After`.
    #[arg(long, env = "TMF635_MAX_REQUESTS_IN_FLIGHT", default_value_t = 1024)]
    pub max_requests_in_flight: usize,

    /// Time limit of one SQL statement, in milliseconds: every statement on PostgreSQL
    /// (`statement_timeout`), list queries on SQLite; a statement stopped by it answers 503.
    /// 0: no limit. Migrations run without it.
    #[arg(long, env = "TMF635_STATEMENT_TIMEOUT_MS", default_value_t = 20_000)]
    pub statement_timeout_ms: u64,

    /// Refuse usage status changes that make no sense (e.g. out of `billed`) with 409.
    #[arg(long, env = "TMF635_ENFORCE_USAGE_LIFECYCLE", default_value_t = false)]
    pub enforce_usage_lifecycle: bool,

    /// Deliver events to subscribers from this instance (every instance may: they share the
    /// queue without delivering an event twice at the same time).
    #[arg(long, env = "TMF635_DELIVERY_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub delivery_enabled: bool,

    /// How often, in milliseconds, the delivery queue is checked when nothing wakes it.
    #[arg(long, env = "TMF635_DELIVERY_POLL_MS", default_value_t = 200)]
    pub delivery_poll_ms: u64,

    /// Attempts before a delivery is moved to the dead letters (listed and re-driven on /hub).
    #[arg(long, env = "TMF635_DELIVERY_MAX_ATTEMPTS", default_value_t = 10)]
    pub delivery_max_attempts: i32,

    /// First retry delay in milliseconds; it doubles per attempt (with jitter) up to the max.
    #[arg(long, env = "TMF635_DELIVERY_BACKOFF_MS", default_value_t = 500)]
    pub delivery_backoff_ms: u64,

    /// Longest retry delay in milliseconds.
    #[arg(
        long,
        env = "TMF635_DELIVERY_BACKOFF_MAX_MS",
        default_value_t = 300_000
    )]
    pub delivery_backoff_max_ms: u64,

    /// Time limit of one callback, in milliseconds.
    #[arg(long, env = "TMF635_CALLBACK_TIMEOUT_MS", default_value_t = 5_000)]
    pub callback_timeout_ms: u64,

    /// Deliveries in flight at once from this instance (to different subscribers).
    #[arg(long, env = "TMF635_DELIVERY_CONCURRENCY", default_value_t = 16)]
    pub delivery_concurrency: u64,

    /// Comma-separated hosts callbacks may point at; empty allows any host.
    #[arg(long, env = "TMF635_CALLBACK_ALLOWED_HOSTS", value_delimiter = ',')]
    pub callback_allowed_hosts: Vec<String>,

    /// Comma-separated CIDRs (or single addresses) callbacks may reach even though they are
    /// refused by default (loopback, link-local, unspecified, multicast, broadcast), e.g.
    /// `127.0.0.0/8` for a listener on the same machine. `TMF635_CALLBACK_DENY_CIDRS` still wins.
    #[arg(
        long,
        env = "TMF635_CALLBACK_ALLOW_CIDRS",
        default_value = "",
        hide_default_value = true
    )]
    pub callback_allow_cidrs: Cidrs,

    /// Comma-separated CIDRs (or single addresses) callbacks may never reach, e.g. `10.0.0.0/8`;
    /// they win over `TMF635_CALLBACK_ALLOW_CIDRS`.
    #[arg(
        long,
        env = "TMF635_CALLBACK_DENY_CIDRS",
        default_value = "",
        hide_default_value = true
    )]
    pub callback_deny_cidrs: Cidrs,

    /// Most subscriptions (`/hub`) this server keeps; a registration beyond it answers 409.
    #[arg(long, env = "TMF635_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    pub max_subscriptions: u64,

    /// Age, in seconds, after which a delivered delivery (with its attempts) is removed, and
    /// an outbox event (the copy of the document it carried) once it is dispatched and none of
    /// its deliveries is still pending or dead. 0: kept forever. Default: 7 days.
    #[arg(long, env = "TMF635_RETAIN_DELIVERED_SECS", default_value_t = 7 * 24 * 3600)]
    pub retain_delivered_secs: u64,

    /// Age, in seconds since its last attempt, after which a dead delivery (with its
    /// attempts) is removed; until then it can be re-driven. 0: kept forever. Default: 30
    /// days.
    #[arg(long, env = "TMF635_RETAIN_DEAD_SECS", default_value_t = 30 * 24 * 3600)]
    pub retain_dead_secs: u64,

    /// Age, in seconds, after which an event received on `/listener/*` is removed. 0: kept
    /// forever. Default: 7 days.
    #[arg(long, env = "TMF635_RETAIN_RECEIVED_EVENTS_SECS", default_value_t = 7 * 24 * 3600)]
    pub retain_received_events_secs: u64,

    /// Time between two retention passes, in milliseconds (each instance runs its own; they
    /// may overlap harmlessly). A pass also removes the deliveries of unregistered
    /// subscriptions.
    #[arg(long, env = "TMF635_RETENTION_INTERVAL_MS", default_value_t = 60_000)]
    pub retention_interval_ms: u64,

    /// Most database connections this instance opens.
    #[arg(long, env = "TMF635_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// SQLite: bytes at the start of the database file that reads by id take from a memory
    /// map instead of copying them; 0 reads everything by copying. Pages read through the map
    /// count toward the process's resident memory (as shared file pages) up to this bound.
    #[arg(long, env = "TMF635_SQLITE_MMAP_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub sqlite_mmap_bytes: u64,

    /// Largest import body (`POST /importJob`), in bytes; a larger one is answered 413. The
    /// body is written to a file in the spool directory as it arrives, never held in memory.
    #[arg(long, env = "TMF635_MAX_IMPORT_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_import_bytes: u64,

    /// Directory the bodies of imports are written to until they are imported. Default: the
    /// system's temporary directory.
    #[arg(long, env = "TMF635_IMPORT_SPOOL_DIR")]
    pub import_spool_dir: Option<std::path::PathBuf>,

    /// Rows an import stores per transaction (with their events and the job's counts). On
    /// SQLite more rows write fewer pages per usage (a page of a date index is written once per
    /// batch, whatever the batch puts in it), but hold the one writer longer (a create waits
    /// for the batch in progress) and keep more rows in memory.
    #[arg(long, env = "TMF635_IMPORT_BATCH_ROWS", default_value_t = 1000)]
    pub import_batch_rows: usize,

    /// Rows an import puts in `usageDate` order before storing them, a window of the file at a
    /// time: rows in date order append to the date-keyed indexes instead of writing a page of
    /// each per row. Each takes ~32 bytes of memory, its text a place in a temporary file in
    /// the spool directory; 0 stores the rows in the file's order.
    #[arg(long, env = "TMF635_IMPORT_ORDER_ROWS", default_value_t = 1_048_576)]
    pub import_order_rows: u64,

    /// Imports running or waiting in one instance; one more is answered 503.
    #[arg(long, env = "TMF635_MAX_IMPORT_JOBS", default_value_t = 2)]
    pub max_import_jobs: usize,

    /// An import whose runner has written nothing for this long, in milliseconds, is taken
    /// over by the instance holding its spooled body (resumed after its last stored batch), or
    /// failed with its counts.
    #[arg(long, env = "TMF635_IMPORT_STALE_MS", default_value_t = 60_000)]
    pub import_stale_ms: u64,

    /// JSON Web Key Set that RS256 and ES256 bearer tokens are checked against: a file path or
    /// an http(s) URL (fetched at start, every 5 minutes, and on a token naming an unknown key).
    #[arg(long, env = "TMF635_AUTH_JWKS")]
    pub auth_jwks: Option<String>,

    /// Shared secret (at least 32 bytes) that HS256 bearer tokens are checked against.
    #[arg(long, env = "TMF635_AUTH_HS256_SECRET", hide_env_values = true)]
    pub auth_hs256_secret: Option<Secret>,

    /// The `iss` every bearer token must carry; unset: not checked.
    #[arg(long, env = "TMF635_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,

    /// An `aud` every bearer token must carry; unset: not checked.
    #[arg(long, env = "TMF635_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// The bearer-token claim that names the caller's tenant. Set, tenancy is on: each request
    /// sees only its tenant's rows, and credentials naming no tenant are refused (403).
    /// Tenancy is also on when an API key carries a tenant (`tmf635 apikey create --tenant`).
    #[arg(long, env = "TMF635_TENANT_CLAIM")]
    pub tenant_claim: Option<String>,

    /// The `whsec_` secret of the upstream server whose events `/listener/*` receives: when
    /// set, posts there must carry a valid Standard Webhooks signature under five minutes old.
    #[arg(long, env = "TMF635_LISTENER_SECRET", hide_env_values = true)]
    pub listener_secret: Option<Secret>,

    /// Log filter (tracing-subscriber syntax), e.g. `info` or `tmf635=debug,sqlx=warn`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,

    /// Logs, metrics and draining.
    #[command(flatten)]
    pub ops: crate::ops::OpsConfig,
}

impl Config {
    /// The settings with their defaults, for tests and embedding.
    pub fn with_database(database_url: &str) -> Self {
        let mut config = Config::parse_from(["tmf635"]);
        config.database_url = database_url.to_string();
        config
    }
}

/// A setting that is a secret: never shown by `Debug` (so never in a log line).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}
