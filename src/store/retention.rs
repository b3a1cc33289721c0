//! Retention: what is kept only for a while is removed once it is old enough.
//!
//! - delivered deliveries, with their attempts, after `delivered` (from `delivered_at`);
//! - dead deliveries, with their attempts, after `dead` (from their last attempt, which
//!   `next_attempt_at` holds for a dead one); until then they can be re-driven;
//! - outbox rows after `delivered` (from `event_time`), once dispatched and with no delivery
//!   still pending or dead (those still need the payload: a dead one can be re-driven);
//! - received events after `received_events` (from `received_at`);
//! - every delivery (and attempt) of an unregistered subscription, whatever its age:
//!   unregistering removes only the `hub` row and records the id in `removed_subscription`.
//!
//! Everything goes in batches of at most `BATCH` rows: the rows are picked on a reading
//! connection, then deleted in one short write (on SQLite through the writer's group commit,
//! so it never contends with it for the write lock), each DELETE guarded by the condition that
//! picked them, so a row that changed meanwhile stays. Each instance runs its own passes; two
//! passes deleting the same rows at once delete them once. Plain SQL only (no `DELETE ...
//! LIMIT`, which PostgreSQL lacks).

use super::delivery::{DEAD, DELIVERED};
use super::Store;
use crate::error::Error;
use chrono::{DateTime, Utc};
use entity::{delivery, delivery_attempt, event_outbox, received_event, removed_subscription};
use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::time::Duration;
use tokio::sync::watch;

/// Rows one batch removes at most (per table; a delivery batch also removes those
/// deliveries' attempts).
pub const BATCH: u64 = 500;

/// How long an unregistered subscription's record outlives its last delivery: a dispatch
/// that read the subscriptions before it was unregistered may still be committing deliveries
/// for it (it checks again inside its transaction, so this is only a second guard).
const TOMBSTONE_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// How long rows are kept; None keeps them forever.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub delivered: Option<Duration>,
    pub dead: Option<Duration>,
    pub received_events: Option<Duration>,
    /// Time between two passes.
    pub interval: Duration,
}

impl RetentionSettings {
    /// From seconds, 0 meaning forever.
    pub fn from_secs(delivered: u64, dead: u64, received_events: u64, interval: Duration) -> Self {
        let age = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        RetentionSettings {
            delivered: age(delivered),
            dead: age(dead),
            received_events: age(received_events),
            interval,
        }
    }
}

/// What one pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub delivered: u64,
    pub dead: u64,
    /// Deliveries of unregistered subscriptions.
    pub unsubscribed: u64,
    /// Attempts of all the deliveries removed.
    pub attempts: u64,
    pub outbox: u64,
    pub received_events: u64,
    /// Unregistered subscriptions done with.
    pub subscriptions: u64,
}

/// `now - age`, or None when the age is forever (or beyond what a date holds).
fn cutoff(now: DateTime<Utc>, age: Option<Duration>) -> Option<DateTime<Utc>> {
    let age = chrono::Duration::from_std(age?).ok()?;
    now.checked_sub_signed(age)
}

/// Runs a pass every `settings.interval` until `shutdown` turns true; a pass in progress
/// stops between two batches. `removed` is told what each pass removed.
pub async fn run(
    store: Store,
    settings: RetentionSettings,
    mut shutdown: watch::Receiver<bool>,
    removed: impl Fn(&Removed) + Send,
) {
    let interval = settings.interval.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        if *shutdown.borrow() {
            break;
        }
        match store.retention_pass(&settings, &shutdown).await {
            Ok(pass) => {
                tracing::debug!(removed = ?pass, "retention pass");
                removed(&pass);
            }
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying again next time"),
        }
    }
}

/// `NOT EXISTS` a delivery row of the attempt: for removing the attempts of deliveries just
/// removed (and not of one a guard kept).
const ATTEMPT_ORPHANED: &str = "NOT EXISTS (SELECT 1 FROM \"delivery\" \
     WHERE \"delivery\".\"id\" = \"delivery_attempt\".\"delivery_id\")";

impl Store {
    /// One retention pass; see the module.
    pub async fn retention_pass(
        &self,
        settings: &RetentionSettings,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Removed, Error> {
        let now = Utc::now();
        let stopping = || *shutdown.borrow();
        let mut removed = Removed::default();
        if let Some(cutoff) = cutoff(now, settings.delivered) {
            let (deliveries, attempts) = self
                .remove_old_deliveries(DELIVERED, delivery::Column::DeliveredAt, cutoff, &stopping)
                .await?;
            removed.delivered = deliveries;
            removed.attempts += attempts;
        }
        if let Some(cutoff) = cutoff(now, settings.dead) {
            let (deliveries, attempts) = self
                .remove_old_deliveries(DEAD, delivery::Column::NextAttemptAt, cutoff, &stopping)
                .await?;
            removed.dead = deliveries;
            removed.attempts += attempts;
        }
        let (deliveries, attempts, subscriptions) =
            self.remove_unsubscribed(now, &stopping).await?;
        removed.unsubscribed = deliveries;
        removed.attempts += attempts;
        removed.subscriptions = subscriptions;
        if let Some(cutoff) = cutoff(now, settings.delivered) {
            removed.outbox = self.remove_outbox(cutoff, &stopping).await?;
        }
        if let Some(cutoff) = cutoff(now, settings.received_events) {
            removed.received_events = self.remove_received_events(cutoff, &stopping).await?;
        }
        Ok(removed)
    }

    /// Removes the deliveries in `status` whose `since` is before `cutoff`, oldest first,
    /// with their attempts. Answers the deliveries and attempts removed.
    async fn remove_old_deliveries(
        &self,
        status: &'static str,
        since: delivery::Column,
        cutoff: DateTime<Utc>,
        stopping: &impl Fn() -> bool,
    ) -> Result<(u64, u64), Error> {
        let old = || {
            Condition::all()
                .add(delivery::Column::Status.eq(status))
                .add(since.lt(cutoff))
        };
        self.remove_deliveries(old, since, stopping).await
    }

    /// Removes the deliveries `which` picks (oldest by `age` first), with their attempts, a
    /// batch at a time. Answers the deliveries and attempts removed.
    async fn remove_deliveries(
        &self,
        which: impl Fn() -> Condition,
        age: delivery::Column,
        stopping: &impl Fn() -> bool,
    ) -> Result<(u64, u64), Error> {
        in_batches(stopping, || async {
            let ids: Vec<String> = self
                .pool()
                .run(|db| {
                    delivery::Entity::find()
                        .select_only()
                        .column(delivery::Column::Id)
                        .filter(which())
                        .order_by_asc(age)
                        .limit(BATCH)
                        .into_tuple()
                        .all(db)
                })
                .await?;
            let picked = ids.len() as u64;
            if picked == 0 {
                return Ok((0, (0, 0)));
            }
            Ok((picked, self.delete_deliveries(ids, which()).await?))
        })
        .await
    }

    /// Deletes the deliveries `ids` that `guard` still holds of, then the attempts of those
    /// gone, in one write.
    async fn delete_deliveries(
        &self,
        ids: Vec<String>,
        guard: Condition,
    ) -> Result<(u64, u64), Error> {
        self.write(move |txn| {
            Box::pin(async move {
                let deliveries = delivery::Entity::delete_many()
                    .filter(delivery::Column::Id.is_in(ids.clone()))
                    .filter(guard)
                    .exec(txn)
                    .await?;
                let attempts = delivery_attempt::Entity::delete_many()
                    .filter(delivery_attempt::Column::DeliveryId.is_in(ids))
                    .filter(Expr::cust(ATTEMPT_ORPHANED))
                    .exec(txn)
                    .await?;
                Ok((deliveries.rows_affected, attempts.rows_affected))
            })
        })
        .await
    }

    /// Removes the deliveries of unregistered subscriptions (through `idx_delivery_queue`),
    /// and the record of each subscription with none left. Answers the deliveries, attempts
    /// and subscriptions removed.
    async fn remove_unsubscribed(
        &self,
        now: DateTime<Utc>,
        stopping: &impl Fn() -> bool,
    ) -> Result<(u64, u64, u64), Error> {
        let (mut deliveries, mut attempts, mut subscriptions) = (0, 0, 0);
        let removed = self
            .pool()
            .run(|db| {
                removed_subscription::Entity::find()
                    .order_by_asc(removed_subscription::Column::RemovedAt)
                    .all(db)
            })
            .await?;
        for subscription in removed {
            if stopping() {
                break;
            }
            let id = subscription.id.clone();
            let of_it = || Condition::all().add(delivery::Column::SubscriptionId.eq(id.as_str()));
            let (d, a) = self
                .remove_deliveries(of_it, delivery::Column::SubscriptionId, stopping)
                .await?;
            deliveries += d;
            attempts += a;
            if stopping() || subscription.removed_at >= now - TOMBSTONE_GRACE {
                continue;
            }
            let done = self
                .write(move |txn| {
                    Box::pin(async move {
                        let deleted = removed_subscription::Entity::delete_many()
                            .filter(removed_subscription::Column::Id.eq(id.as_str()))
                            .filter(
                                Expr::exists(
                                    Query::select()
                                        .expr(Expr::val(1))
                                        .from(delivery::Entity)
                                        .and_where(delivery::Column::SubscriptionId.eq(id.as_str()))
                                        .to_owned(),
                                )
                                .not(),
                            )
                            .exec(txn)
                            .await?;
                        Ok(deleted.rows_affected)
                    })
                })
                .await?;
            subscriptions += done;
        }
        Ok((deliveries, attempts, subscriptions))
    }

    /// Removes outbox rows older than `cutoff` that are dispatched and have no delivery still
    /// pending or dead, scanning from the lowest `seq` a window of `BATCH` rows at a time and
    /// stopping at the first row not old enough. Answers the rows removed.
    async fn remove_outbox(
        &self,
        cutoff: DateTime<Utc>,
        stopping: &impl Fn() -> bool,
    ) -> Result<u64, Error> {
        let mut removed = 0;
        let mut after = i64::MIN;
        while !stopping() {
            let window: Vec<(i64, DateTime<Utc>)> = self
                .pool()
                .run(|db| {
                    event_outbox::Entity::find()
                        .select_only()
                        .column(event_outbox::Column::Seq)
                        .column(event_outbox::Column::EventTime)
                        .filter(event_outbox::Column::Seq.gt(after))
                        .order_by_asc(event_outbox::Column::Seq)
                        .limit(BATCH)
                        .into_tuple()
                        .all(db)
                })
                .await?;
            let Some(&(last, _)) = window.last() else {
                break;
            };
            after = last;
            let old: Vec<i64> = window
                .iter()
                .take_while(|(_, time)| *time < cutoff)
                .map(|(seq, _)| *seq)
                .collect();
            let more = old.len() == window.len() && window.len() as u64 == BATCH;
            if !old.is_empty() {
                removed += self
                    .write(move |txn| {
                        Box::pin(async move {
                            let deleted = event_outbox::Entity::delete_many()
                                .filter(event_outbox::Column::Seq.is_in(old))
                                .filter(event_outbox::Column::EventTime.lt(cutoff))
                                .filter(Expr::cust(
                                    "NOT EXISTS (SELECT 1 FROM \"event_pending\" \
                                     WHERE \"event_pending\".\"seq\" = \"event_outbox\".\"seq\")",
                                ))
                                .filter(Expr::cust(
                                    "NOT EXISTS (SELECT 1 FROM \"delivery\" \
                                     WHERE \"delivery\".\"outbox_seq\" = \"event_outbox\".\"seq\" \
                                     AND \"delivery\".\"status\" <> 'delivered')",
                                ))
                                .exec(txn)
                                .await?;
                            Ok(deleted.rows_affected)
                        })
                    })
                    .await?;
            }
            if !more {
                break;
            }
        }
        Ok(removed)
    }

    /// Removes received events older than `cutoff`, oldest first. Answers how many.
    async fn remove_received_events(
        &self,
        cutoff: DateTime<Utc>,
        stopping: &impl Fn() -> bool,
    ) -> Result<u64, Error> {
        let (removed, _) = in_batches(stopping, || async {
            let ids: Vec<String> = self
                .pool()
                .run(|db| {
                    received_event::Entity::find()
                        .select_only()
                        .column(received_event::Column::Id)
                        .filter(received_event::Column::ReceivedAt.lt(cutoff))
                        .order_by_asc(received_event::Column::ReceivedAt)
                        .limit(BATCH)
                        .into_tuple()
                        .all(db)
                })
                .await?;
            let picked = ids.len() as u64;
            if picked == 0 {
                return Ok((0, (0, 0)));
            }
            let deleted = self
                .write(move |txn| {
                    Box::pin(async move {
                        let deleted = received_event::Entity::delete_many()
                            .filter(received_event::Column::Id.is_in(ids))
                            .filter(received_event::Column::ReceivedAt.lt(cutoff))
                            .exec(txn)
                            .await?;
                        Ok(deleted.rows_affected)
                    })
                })
                .await?;
            Ok((picked, (deleted, 0)))
        })
        .await?;
        Ok(removed)
    }
}

/// Runs `batch` until it picks fewer than `BATCH` rows or removes none (another pass is at
/// them, or they changed: the next pass sees), or the server is stopping. A batch answers the
/// rows it picked and the rows it removed (of two kinds, e.g. deliveries and their
/// attempts); answers the sums of the latter.
async fn in_batches<F, B>(stopping: &impl Fn() -> bool, mut batch: B) -> Result<(u64, u64), Error>
where
    B: FnMut() -> F,
    F: std::future::Future<Output = Result<(u64, (u64, u64)), Error>>,
{
    let (mut first, mut second) = (0, 0);
    while !stopping() {
        let (picked, (removed, also)) = batch().await?;
        first += removed;
        second += also;
        if picked < BATCH || removed == 0 {
            break;
        }
    }
    Ok((first, second))
}
