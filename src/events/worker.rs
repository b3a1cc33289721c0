//! The delivery worker: beside the request path, it fans committed events out to matching
//! subscriptions and delivers them, at least once and in order per subscription, retrying
//! with exponential backoff and jitter until a delivery is given up as dead.

use super::callback::CallbackClient;
use crate::store::delivery::Leased;
use crate::store::Store;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often the queue is looked at when nothing wakes the worker.
    pub poll: Duration,
    /// Attempts before a delivery is dead.
    pub max_attempts: i32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How long a leased delivery is this instance's; longer than a callback may take.
    pub lease: Duration,
    /// Deliveries in flight at once (to different subscriptions).
    pub concurrency: u64,
}

/// The delay before retry `attempts` (1 = the first retry): exponential, capped, with jitter
/// in [delay/2, delay] so retries from many deliveries do not arrive together.
pub fn backoff(settings: &WorkerSettings, attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 30) as u32 - 1;
    let delay = settings
        .backoff_initial
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(settings.backoff_max);
    let half = delay / 2;
    half + half.mul_f64(fastrand::f64())
}

pub struct Worker {
    store: Store,
    client: CallbackClient,
    settings: WorkerSettings,
    /// This instance, as lease owner.
    owner: String,
}

impl Worker {
    pub fn new(store: Store, client: CallbackClient, settings: WorkerSettings) -> Self {
        Worker {
            store,
            client,
            settings,
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Runs until `shutdown` turns true; `wake` cuts the wait short after a local commit.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        loop {
            let busy = match worker.clone().round().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "event delivery round failed; retrying");
                    false
                }
            };
            if *shutdown.borrow() {
                break;
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(worker.settings.poll) => {}
            }
        }
    }

    /// One pass: dispatch new events, deliver what is due. True when there may be more.
    async fn round(self: Arc<Self>) -> Result<bool, crate::error::Error> {
        let dispatched = self.store.dispatch_events(200).await?;
        let until = Utc::now()
            + chrono::Duration::from_std(self.settings.lease)
                .unwrap_or(chrono::Duration::seconds(60));
        let leased = self
            .store
            .lease_deliveries(&self.owner, until, self.settings.concurrency)
            .await?;
        let delivered = leased.len();
        let mut in_flight = JoinSet::new();
        for lease in leased {
            let worker = self.clone();
            in_flight.spawn(async move { worker.deliver(lease).await });
        }
        while let Some(result) = in_flight.join_next().await {
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "recording a delivery attempt failed");
            }
        }
        Ok(dispatched > 0 || delivered > 0)
    }

    async fn deliver(&self, lease: Leased) -> Result<(), crate::error::Error> {
        let attempt = self
            .client
            .deliver(&lease.callback, &lease.delivery.event_type, &lease.payload)
            .await;
        let attempts = lease.delivery.attempts + 1;
        let retry_at = (attempts < self.settings.max_attempts).then(|| {
            Utc::now()
                + chrono::Duration::from_std(backoff(&self.settings, attempts))
                    .unwrap_or(chrono::Duration::seconds(1))
        });
        if !attempt.succeeded() {
            tracing::info!(
                delivery = %lease.delivery.id,
                callback = %lease.callback,
                attempts,
                error = attempt.error.as_deref().unwrap_or(""),
                status = attempt.http_status,
                dead = retry_at.is_none(),
                "event delivery failed"
            );
        }
        self.store
            .record_attempt(&self.owner, &lease.delivery, &attempt, retry_at)
            .await
    }
}
