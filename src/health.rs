//! `GET /health/live` and `GET /health/ready`, outside the API base path: what an
//! orchestrator asks before it routes requests here.
//!
//! Liveness says the process serves. Readiness runs every check at once, each within a short
//! time limit, and answers 200 when all pass, else 503, with a JSON body naming each check:
//! the database answers a trivial query, no migration is pending, the write path commits (on
//! SQLite the writer and the sync of its WAL, so a stalled disk shows), the delivery worker
//! runs where it is enabled, and the server is not draining.

use crate::store::Store;
use poem::http::StatusCode;
use poem::{handler, web::Data, IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Time limit of each readiness check: a probe must answer well within an orchestrator's own.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The server's state as readiness sees it.
pub struct Health {
    store: Store,
    draining: AtomicBool,
    /// Set while the delivery worker runs; None where delivery is disabled.
    worker_running: Option<Arc<AtomicBool>>,
}

/// Clears the flag when the task holding it ends, however it ends.
pub struct Running(Arc<AtomicBool>);

impl Running {
    pub fn new(flag: Arc<AtomicBool>) -> Running {
        flag.store(true, Ordering::SeqCst);
        Running(flag)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Health {
    pub fn new(store: Store, worker_running: Option<Arc<AtomicBool>>) -> Arc<Health> {
        Arc::new(Health {
            store,
            draining: AtomicBool::new(false),
            worker_running,
        })
    }

    /// From now on readiness fails: the server is stopping.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Every check, by name, and whether all passed.
    pub async fn readiness(&self) -> (bool, Map<String, Value>) {
        let (database, migrations, writer) = tokio::join!(
            check(async { self.store.ping().await.map_err(|e| e.to_string()) }),
            check(async {
                match self.store.pending_migrations().await {
                    Ok(0) => Ok(()),
                    Ok(n) => Err(format!("{n} migrations pending")),
                    Err(e) => Err(e.to_string()),
                }
            }),
            check(async { self.store.write_nothing().await.map_err(|e| e.to_string()) }),
        );
        let worker = match &self.worker_running {
            None => Ok(()),
            Some(flag) if flag.load(Ordering::SeqCst) => Ok(()),
            Some(_) => Err("the delivery worker is not running".to_string()),
        };
        let draining = match self.draining.load(Ordering::SeqCst) {
            false => Ok(()),
            true => Err("the server is stopping".to_string()),
        };
        let mut checks = Map::new();
        let mut all_pass = true;
        for (name, outcome) in [
            ("database", database),
            ("migrations", migrations),
            ("writer", writer),
            ("deliveryWorker", worker),
            ("draining", draining),
        ] {
            all_pass &= outcome.is_ok();
            checks.insert(name.into(), verdict(outcome));
        }
        (all_pass, checks)
    }
}

/// `work` within the check time limit.
async fn check(work: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}

fn verdict(outcome: Result<(), String>) -> Value {
    match outcome {
        Ok(()) => json!({"status": "pass"}),
        Err(message) => json!({"status": "fail", "message": message}),
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    poem::web::Json(body)
        .with_status(status)
        .with_header("cache-control", "no-store")
        .into_response()
}

#[handler]
pub async fn live() -> Response {
    answer(StatusCode::OK, json!({"status": "pass"}))
}

#[handler]
pub async fn ready(health: Data<&Arc<Health>>) -> Response {
    let (all_pass, checks) = health.readiness().await;
    let checks = Value::Object(checks);
    if !all_pass {
        tracing::warn!(%checks, "not ready");
    }
    let (status, word) = match all_pass {
        true => (StatusCode::OK, "pass"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "fail"),
    };
    answer(status, json!({"status": word, "checks": checks}))
}
