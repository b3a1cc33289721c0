//! Wiring: the generated API over the handlers, the docs (Swagger UI, spec), health and
//! metrics, the TMF error mapping for everything, request logging, and the server's life
//! (bind, serve, drain, stop).

use crate::api_document;
use crate::auth::listener::verify_signed_events;
use crate::auth::{authenticate, Auth};
use crate::bulk::import::Imports;
use crate::config::Config;
use crate::docs;
use crate::error::into_tmf_response;
use crate::events::callback::CallbackClient;
use crate::events::egress::EgressPolicy;
use crate::events::worker::{Worker, WorkerSettings};
use crate::generated::endpoints::{AllSchemas, UsageManagementApi};
use crate::handlers::{Handlers, Settings, BASE_PATH};
use crate::health::{self, Health, Running};
use crate::limits::{within_limits, ReadDeadlineAcceptor, RequestLimits};
use crate::metrics::{self, Metrics};
use crate::observe::observe;
use crate::store::retention::RetentionSettings;
use crate::store::Store;
use poem::endpoint::make_sync;
use poem::http::{header, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Redirect;
use poem::{get, Endpoint, EndpointExt, IntoResponse, Route, Server};
use poem_openapi::OpenApiService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The OpenAPI service: title, version and description come from the document in `api/`.
fn openapi_service(handlers: Handlers) -> OpenApiService<(UsageManagementApi, AllSchemas), ()> {
    let info = &api_document::document()["info"];
    let text = |key: &str, default: &str| info[key].as_str().unwrap_or(default).to_string();
    OpenApiService::new(
        (UsageManagementApi(handlers), AllSchemas),
        text("title", "Usage Management"),
        text("version", "4.0.0"),
    )
    .description(text("description", ""))
    .server(BASE_PATH)
}

/// The whole HTTP application on a connected store.
pub fn routes(
    store: Store,
    imports: Imports,
    callbacks: CallbackClient,
    auth: Auth,
    config: &Config,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> impl Endpoint<Output = poem::Response> {
    let handlers = Handlers::new(store, imports, callbacks, Settings::from(config));
    let api = openapi_service(handlers);
    let derived = api.spec();
    let spec = docs::complete_spec(&derived);
    let ui = docs::swagger_ui(api.swagger_ui_html(), &derived, &spec);
    let spec_json = docs::json_endpoint(&spec);
    let spec_yaml = docs::yaml_endpoint(&spec);
    let limits = RequestLimits::new(config);
    let listener_secret = config.listener_secret.clone();
    Route::new()
        .nest(BASE_PATH, api)
        .nest("/swagger-ui", ui)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .at(
            "/",
            make_sync(|_| Redirect::see_other("/swagger-ui/").into_response()),
        )
        .at("/health/live", get(health::live))
        .at("/health/ready", get(health::ready).data(health))
        .at("/metrics", get(metrics::serve).data(metrics.clone()))
        .around(move |endpoint, request| {
            verify_signed_events(endpoint, request, listener_secret.clone())
        })
        .around(move |endpoint, request| authenticate(endpoint, request, auth.clone()))
        .around(move |endpoint, request| within_limits(endpoint, request, limits.clone()))
        .catch_all_error(into_tmf_response)
        .around(allow_header)
        .around(move |endpoint, request| observe(endpoint, request, metrics.clone()))
}

/// Adds the `Allow` header a 405 must carry (RFC 9110), from the methods of the document.
async fn allow_header<E: Endpoint<Output = poem::Response>>(
    endpoint: Arc<E>,
    request: poem::Request,
) -> poem::Result<poem::Response> {
    let path = request.uri().path().to_string();
    let mut response = endpoint.call(request).await?;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(api_path) = path.strip_prefix(BASE_PATH) {
            let allowed = api_document::allowed_methods(api_path).join(", ");
            if let Ok(value) = header::HeaderValue::from_str(&allowed) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
    }
    Ok(response)
}

/// A server bound to its address, ready to run, with its delivery worker and retention.
pub struct App {
    acceptor: ReadDeadlineAcceptor<poem::listener::TcpAcceptor>,
    idle_timeout: Duration,
    endpoint: poem::endpoint::BoxEndpoint<'static>,
    store: Store,
    worker: Option<Worker>,
    retention: RetentionSettings,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// Set while the delivery worker runs (readiness reads it).
    worker_running: Option<Arc<AtomicBool>>,
    /// `/metrics` on an address of its own, when configured.
    metrics_acceptor: Option<poem::listener::TcpAcceptor>,
    drain_delay: Duration,
    shutdown_grace: Duration,
    imports: Imports,
}

/// Deliveries of one subscription sent per lease; a failure stops the batch, so in practice a
/// slow callback costs at most one timeout before the batch ends.
const DELIVERY_BATCH: u64 = 20;

fn worker_settings(config: &Config) -> WorkerSettings {
    let drain_grace = Duration::from_millis(config.ops.shutdown_grace_ms);
    let callback_timeout = Duration::from_millis(config.callback_timeout_ms);
    WorkerSettings {
        poll: Duration::from_millis(config.delivery_poll_ms.max(10)),
        max_attempts: config.delivery_max_attempts.max(1),
        backoff_initial: Duration::from_millis(config.delivery_backoff_ms),
        backoff_max: Duration::from_millis(config.delivery_backoff_max_ms),
        // Short, and renewed while its batch is being sent (see `Worker::deliver`): a
        // crashed instance holds its subscriptions up for one lease at most. It outlives
        // one callback, the longest step between two renewals.
        lease: (callback_timeout * 2).max(Duration::from_secs(1)),
        concurrency: config.delivery_concurrency.max(1),
        batch: DELIVERY_BATCH,
        drain_grace,
    }
}

impl App {
    /// Connects the database (running migrations) and binds the listen address.
    pub async fn build(config: &Config) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
        let store = Store::connect(
            &config.database_url,
            config.db_max_connections,
            Duration::from_millis(config.statement_timeout_ms),
            config.sqlite_mmap_bytes,
        )
        .await?;
        let auth = Auth::start(config, &store).await?;
        let callbacks = CallbackClient::new(
            Duration::from_millis(config.callback_timeout_ms),
            config.callback_allowed_hosts.clone(),
            EgressPolicy::new(
                config.callback_allow_cidrs.clone(),
                config.callback_deny_cidrs.clone(),
            ),
        )?;
        let acceptor = ReadDeadlineAcceptor {
            inner: TcpListener::bind(config.listen.clone())
                .into_acceptor()
                .await?,
            limit: Duration::from_millis(config.request_read_timeout_ms.max(1)),
        };
        let metrics_acceptor = match &config.ops.metrics_listen {
            Some(address) => Some(TcpListener::bind(address.clone()).into_acceptor().await?),
            None => None,
        };
        let metrics = Metrics::new(store.clone());
        let imports = Imports::new(store.clone(), config);
        let worker = config.delivery_enabled.then(|| {
            Worker::new(store.clone(), callbacks.clone(), worker_settings(config))
                .with_metrics(metrics.clone())
        });
        let worker_running = worker.as_ref().map(|_| Arc::new(AtomicBool::new(false)));
        let health = Health::new(store.clone(), worker_running.clone());
        let endpoint = routes(
            store.clone(),
            imports.clone(),
            callbacks,
            auth,
            config,
            health.clone(),
            metrics.clone(),
        );
        Ok(App {
            acceptor,
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            endpoint: endpoint.boxed(),
            store,
            worker,
            health,
            metrics,
            worker_running,
            metrics_acceptor,
            drain_delay: Duration::from_millis(config.ops.drain_delay_ms),
            shutdown_grace: Duration::from_millis(config.ops.shutdown_grace_ms),
            retention: RetentionSettings::from_secs(
                config.retain_delivered_secs,
                config.retain_dead_secs,
                config.retain_received_events_secs,
                Duration::from_millis(config.retention_interval_ms),
            ),
            imports,
        })
    }

    /// The store the server runs on (benchmarks load data through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
    }

    /// Serves until `shutdown` completes, then drains: readiness turns 503 at once, requests
    /// go on being served for the drain delay, then the listener closes and requests and
    /// deliveries in flight get the shutdown grace to finish (deliveries still sending are
    /// handed back to the queue; undelivered events stay queued).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let metrics = self.metrics.clone();
        let retention = tokio::spawn(crate::store::retention::run(
            self.store.clone(),
            self.retention,
            stopped.clone(),
            move |removed| metrics.retention_pass(removed),
        ));
        // Imports in progress are not waited for: each batch is stored whole or not at all,
        // and the job is resumed after its last one (see `bulk::import`).
        tokio::spawn(self.imports.sweep(stopped.clone()));
        let worker = self.worker.map(|w| {
            let running = self.worker_running.clone();
            let (changes, stopped) = (self.store.changes(), stopped.clone());
            tokio::spawn(async move {
                let _running = running.map(Running::new);
                w.run(changes, stopped).await
            })
        });
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            let mut stopped = stopped.clone();
            let server = Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                metrics::routes(self.metrics.clone()),
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
                Some(Duration::from_secs(1)),
            );
            tokio::spawn(server)
        });
        let (health, drain_delay) = (self.health.clone(), self.drain_delay);
        let result = Server::new_with_acceptor(self.acceptor)
            .idle_timeout(self.idle_timeout)
            .run_with_graceful_shutdown(
                self.endpoint,
                async move {
                    shutdown.await;
                    health.start_draining();
                    tracing::info!("draining: readiness answers 503");
                    tokio::time::sleep(drain_delay).await;
                    let _ = stop.send(true);
                },
                Some(self.shutdown_grace),
            )
            .await;
        // The worker takes the grace itself, then hands back what is still in flight.
        let waited = self.shutdown_grace + Duration::from_secs(5);
        if let Some(worker) = worker {
            let _ = tokio::time::timeout(waited, worker).await;
        }
        // A pass in progress stops after its current batch.
        let _ = tokio::time::timeout(waited, retention).await;
        if let Some(server) = metrics_server {
            let _ = tokio::time::timeout(waited, server).await;
        }
        result
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
