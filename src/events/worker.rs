//! The delivery worker: beside the request path, it fans committed events out to matching
//! subscriptions and delivers them, at least once and in order per subscription, retrying
//! with exponential backoff and jitter until a delivery is given up as dead.

use super::callback::CallbackClient;
use crate::metrics::Metrics;
use crate::store::delivery::{describe, Attempt, Leased};
use crate::store::Store;
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// How long a leased delivery is this instance's without a renewal; renewed every third
    /// of it while its batch is being sent, so it need only outlive one callback.
    pub lease: Duration,
    /// Subscriptions served at once (each by one task, in order).
    pub concurrency: u64,
    /// Deliveries of one subscription leased, sent and recorded together.
    pub batch: u64,
    /// At shutdown, time deliveries in flight get to finish before they are handed back.
    pub drain_grace: Duration,
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

/// The shortest time between two rounds of the worker.
const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(10);
/// Outbox events fanned out per round at most.
const DISPATCH_BATCH: u64 = 500;

pub struct Worker {
    store: Store,
    client: CallbackClient,
    settings: WorkerSettings,
    /// This instance, as lease owner.
    owner: String,
    metrics: Option<Arc<Metrics>>,
}

impl Worker {
    pub fn new(store: Store, client: CallbackClient, settings: WorkerSettings) -> Self {
        Worker {
            store,
            client,
            settings,
            owner: uuid::Uuid::new_v4().to_string(),
            metrics: None,
        }
    }

    /// Observes callback latencies and failures in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `shutdown` turns true; `wake` cuts the wait short after a local commit.
    /// Deliveries run as tasks of their own, so a slow subscriber holds up only itself: as
    /// soon as one finishes, the next due delivery (of any subscription) is leased.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let mut in_flight: JoinSet<Result<(), crate::error::Error>> = JoinSet::new();
        let mut last_round: Option<Instant> = None;
        loop {
            // Every commit wakes the worker: under a stream of commits, rounds are spaced so
            // that each dispatches many events instead of queueing a write per commit.
            if let Some(wait) = last_round.and_then(|t| MIN_ROUND_INTERVAL.checked_sub(t.elapsed()))
            {
                tokio::time::sleep(wait).await;
            }
            last_round = Some(Instant::now());
            let busy = match worker.round(&mut in_flight).await {
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
                Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                    log_failure(finished);
                }
                _ = tokio::time::sleep(worker.settings.poll) => {}
            }
        }
        // Deliveries in progress get the grace period to record their outcome; those still
        // sending then are stopped and handed back, so that another instance or the next
        // start sends them at once instead of after their lease.
        let finishing = async {
            while let Some(finished) = in_flight.join_next().await {
                log_failure(finished);
            }
        };
        let _ = tokio::time::timeout(worker.settings.drain_grace, finishing).await;
        in_flight.shutdown().await;
        match worker.store.release_all_leases(&worker.owner).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "deliveries in flight handed back"),
            Err(e) => tracing::warn!(error = %e, "handing back deliveries in flight failed"),
        }
    }

    /// One pass: dispatch new events, lease what is due into the free delivery slots. True
    /// when there may be more to do right away.
    async fn round(
        self: &Arc<Self>,
        in_flight: &mut JoinSet<Result<(), crate::error::Error>>,
    ) -> Result<bool, crate::error::Error> {
        while let Some(finished) = in_flight.try_join_next() {
            log_failure(finished);
        }
        let dispatched = self.store.dispatch_events(DISPATCH_BATCH).await?;
        let free = self
            .settings
            .concurrency
            .saturating_sub(in_flight.len() as u64);
        let mut leased = 0;
        if free > 0 {
            let until = Utc::now()
                + chrono::Duration::from_std(self.settings.lease)
                    .unwrap_or(chrono::Duration::seconds(60));
            let batches = self
                .store
                .lease_deliveries(&self.owner, until, free, self.settings.batch)
                .await?;
            for batch in batches {
                let worker = self.clone();
                leased += 1;
                in_flight.spawn(async move { worker.deliver(batch).await });
            }
        }
        Ok(dispatched > 0 || leased > 0)
    }

    /// Sends a subscription's batch in order, stopping at the first failure (the rest stays
    /// queued behind it), then records every attempt in one transaction. The batch's lease is
    /// renewed meanwhile: should this instance die, another takes the batch over within one
    /// lease, and sends what was in flight again under the same event ids.
    async fn deliver(&self, batch: Vec<Leased>) -> Result<(), crate::error::Error> {
        let ids: Vec<String> = batch.iter().map(|l| l.delivery.id.clone()).collect();
        let renew = async {
            loop {
                tokio::time::sleep(self.settings.lease / 3).await;
                let until = Utc::now()
                    + chrono::Duration::from_std(self.settings.lease)
                        .unwrap_or(chrono::Duration::seconds(10));
                if let Err(e) = self.store.renew_leases(&self.owner, &ids, until).await {
                    tracing::warn!(error = %e, "renewing a delivery lease failed");
                }
            }
        };
        tokio::select! {
            sent = self.send(batch) => sent,
            never = renew => never,
        }
    }

    async fn send(&self, batch: Vec<Leased>) -> Result<(), crate::error::Error> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut unsent = Vec::new();
        for lease in batch {
            if outcomes
                .last()
                .is_some_and(|(_, attempt, _): &(_, Attempt, _)| !attempt.succeeded())
            {
                unsent.push(lease.delivery.id);
                continue;
            }
            let attempt = self
                .client
                .deliver(
                    &lease.callback,
                    &lease.delivery.event_type,
                    lease.payload,
                    lease
                        .secret
                        .as_deref()
                        .map(|secret| (secret, lease.delivery.event_id.as_str())),
                )
                .await;
            let attempts = lease.delivery.attempts + 1;
            let retry_at = (attempts < self.settings.max_attempts).then(|| {
                Utc::now()
                    + chrono::Duration::from_std(backoff(&self.settings, attempts))
                        .unwrap_or(chrono::Duration::seconds(1))
            });
            self.observe(&lease.delivery, &attempt);
            if !attempt.succeeded() {
                tracing::info!(
                    delivery = %lease.delivery.id,
                    callback = %super::egress::redact(&lease.callback),
                    attempts,
                    error = attempt.error.as_deref().unwrap_or(""),
                    detail = attempt.detail.as_deref().unwrap_or(""),
                    status = attempt.http_status,
                    dead = retry_at.is_none(),
                    "event delivery failed"
                );
            }
            outcomes.push((lease.delivery, attempt, retry_at));
        }
        self.store.record_attempts(&self.owner, &outcomes).await?;
        self.store.release_leases(&self.owner, &unsent).await
    }
}

impl Worker {
    /// Counts an attempt: its latency from the delivery's creation when it succeeded, else
    /// the kind of its failure.
    fn observe(&self, delivery: &entity::delivery::Model, attempt: &Attempt) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        if attempt.succeeded() {
            let since = (Utc::now() - delivery.created_at).to_std();
            metrics.callback_delivered(since.unwrap_or_default());
        } else {
            metrics.callback_failed(describe(attempt).as_deref().unwrap_or("unknown"));
        }
    }
}

fn log_failure(finished: Result<Result<(), crate::error::Error>, tokio::task::JoinError>) {
    match finished {
        Ok(Err(e)) => tracing::warn!(error = %e, "recording a delivery attempt failed"),
        Err(e) => tracing::warn!(error = %e, "a delivery task failed"),
        Ok(Ok(())) => {}
    }
}
