//! The server's Prometheus metrics, in a registry of each `App` (the tests run many servers in
//! one process, and each must count only its own traffic), served at `/metrics` in the
//! OpenMetrics text format by `prometheus-client`.
//!
//! Counters and histograms move as things happen; the gauges of the queue and the pool are
//! read from the database and the pool when scraped, so they are never stale.

use crate::store::retention::Removed;
use crate::store::{QueueCounts, Store, WriterMetrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The operationId of the API document, or a fixed name outside it; never the raw path.
    pub operation: &'static str,
    /// `2xx`, `4xx`, ...
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

/// Latencies from 1 ms to about 33 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub in_flight: Gauge,
    pool_size: Gauge,
    pool_idle: Gauge,
    outbox_waiting: Gauge,
    deliveries: Family<StatusLabel, Gauge>,
    callback_latency: Histogram,
    callback_failures: Family<KindLabel, Counter>,
    retention_deleted: Family<TableLabel, Counter>,
    store: Store,
}

impl Metrics {
    /// The metrics of a server on `store`, the writer's own histograms among them.
    pub fn new(store: Store) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("tmf635");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by operation and status class",
            requests.clone(),
        );
        let durations =
            Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's headers to its answer, by operation and status class",
            durations.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let in_flight = gauge(
            &mut registry,
            "http_requests_in_flight",
            "Requests being answered",
        );
        let pool_size = gauge(
            &mut registry,
            "db_pool_connections",
            "Connections open in the database pool",
        );
        let pool_idle = gauge(
            &mut registry,
            "db_pool_idle_connections",
            "Idle connections of the database pool",
        );
        let outbox_waiting = gauge(
            &mut registry,
            "outbox_events_waiting",
            "Committed events not yet fanned out to subscriptions",
        );
        let deliveries = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "deliveries",
            "Deliveries to subscribers by status (pending, dead)",
            deliveries.clone(),
        );
        let callback_latency = latency();
        registry.register(
            "event_commit_to_callback_seconds",
            "Time from an event's fan-out (right after its commit) to its accepted callback",
            callback_latency.clone(),
        );
        let callback_failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "callback_failures",
            "Failed callback attempts by kind (timeout, connection refused, HTTP 500, ...)",
            callback_failures.clone(),
        );
        let retention_deleted = Family::<TableLabel, Counter>::default();
        registry.register(
            "retention_deleted_rows",
            "Rows removed by retention, by table",
            retention_deleted.clone(),
        );
        register_writer(&mut registry, store.writer_metrics());
        Arc::new(Metrics {
            registry,
            requests,
            durations,
            in_flight,
            pool_size,
            pool_idle,
            outbox_waiting,
            deliveries,
            callback_latency,
            callback_failures,
            retention_deleted,
            store,
        })
    }

    /// Counts one answered request.
    pub fn request(&self, labels: RequestLabels, took: Duration) {
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A callback accepted `since` its delivery was created.
    pub fn callback_delivered(&self, since: Duration) {
        self.callback_latency.observe(since.as_secs_f64());
    }

    /// A failed callback attempt, by the kind its delivery records.
    pub fn callback_failed(&self, kind: &str) {
        self.callback_failures
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// What a retention pass removed.
    pub fn retention_pass(&self, removed: &Removed) {
        let tables = [
            (
                "delivery",
                removed.delivered + removed.dead + removed.unsubscribed,
            ),
            ("delivery_attempt", removed.attempts),
            ("event_outbox", removed.outbox),
            ("received_event", removed.received_events),
            ("removed_subscription", removed.subscriptions),
        ];
        for (table, rows) in tables {
            self.retention_deleted
                .get_or_create(&TableLabel { table })
                .inc_by(rows);
        }
    }

    /// The metrics in the OpenMetrics text format, the queue's gauges read now (left as
    /// they were when the database does not answer: the rest is still worth serving).
    pub async fn scrape(&self) -> Result<String, std::fmt::Error> {
        let (size, idle) = self.store.pool_use();
        self.pool_size.set(i64::from(size));
        self.pool_idle.set(idle as i64);
        match self.store.queue_counts().await {
            Ok(QueueCounts {
                outbox_waiting,
                pending,
                dead,
            }) => {
                self.outbox_waiting.set(outbox_waiting as i64);
                for (status, count) in [("pending", pending), ("dead", dead)] {
                    self.deliveries
                        .get_or_create(&StatusLabel { status })
                        .set(count as i64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "counting the event queue for metrics failed"),
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn register_writer(registry: &mut Registry, writer: WriterMetrics) {
    registry.register(
        "writer_batch_size",
        "Writes committed together by a writer (group commit)",
        writer.batch_size,
    );
    registry.register(
        "writer_commit_seconds",
        "Time a writer takes to run and commit one batch",
        writer.commit,
    );
    registry.register(
        "wal_sync_seconds",
        "Time one sync of SQLite's WAL takes (SQLite with a database file)",
        writer.sync,
    );
}

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
#[poem::handler]
pub async fn serve(metrics: poem::web::Data<&Arc<Metrics>>) -> poem::Response {
    match metrics.scrape().await {
        Ok(text) => poem::Response::builder()
            .content_type(CONTENT_TYPE)
            .header("cache-control", "no-store")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "encoding the metrics failed");
            poem::Response::builder()
                .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                .finish()
        }
    }
}

/// The routes of a metrics listener of its own (`TMF635_METRICS_LISTEN`).
pub fn routes(metrics: Arc<Metrics>) -> impl poem::Endpoint<Output = poem::Response> {
    use poem::EndpointExt;
    poem::Route::new()
        .at("/metrics", poem::get(serve).data(metrics))
        .map_to_response()
}
