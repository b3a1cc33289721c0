//! The delivery queue (`fan_out` fills it): leasing due deliveries to one worker at a time,
//! recording attempts. Every statement here is plain SQL that SQLite, PostgreSQL and
//! PostgreSQL-compatible distributed engines run; exclusivity between instances comes from
//! guarded UPDATEs (`... WHERE <expected state>`), not from locks held across network calls.

use super::tenant::TenantStore;
use super::{Store, IDS_PER_IN};
use crate::error::Error;
use chrono::{DateTime, Utc};
use entity::{delivery, delivery_attempt, event_outbox, hub};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// A delivery leased to this worker, with what it needs to be sent.
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery: delivery::Model,
    pub callback: String,
    /// The subscription's signing secret (none for subscriptions older than signing).
    pub secret: Option<String>,
    /// The event as JSON text, sent as it is.
    pub payload: String,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub http_status: Option<u16>,
    /// The kind of failure (`timeout`, `connection refused`, `refused by egress policy`, ...):
    /// what clients are shown, never the network error's text.
    pub error: Option<String>,
    /// The full error, for the server log only (never stored).
    pub detail: Option<String>,
    pub duration_ms: i64,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.http_status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Store {
    /// Leases work for up to `subscriptions` subscriptions: for each, its oldest pending
    /// deliveries (at most `per_subscription`, consecutive and due), to `owner` until `until`.
    /// Each batch is sent in order by one task; leasing and recording a batch at once keeps the
    /// commits per event low. A batch another instance got to first is left to it.
    pub async fn lease_deliveries(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        subscriptions: u64,
        per_subscription: u64,
    ) -> Result<Vec<Vec<Leased>>, Error> {
        self.pool()
            .run(|db| async move {
                let now = Utc::now();
                let heads = due_heads(db, now, subscriptions).await?;
                let mut batches = Vec::new();
                for head in heads {
                    // The head and the pending deliveries right behind it, while they are due and free.
                    let queue = delivery::Entity::find()
                        .filter(delivery::Column::SubscriptionId.eq(head.subscription_id.as_str()))
                        .filter(delivery::Column::Status.eq(PENDING))
                        .order_by_asc(delivery::Column::OutboxSeq)
                        .limit(per_subscription)
                        .all(db)
                        .await?;
                    let batch: Vec<delivery::Model> = queue
                        .into_iter()
                        .take_while(|d| {
                            d.next_attempt_at <= now
                                && d.lease_until.is_none_or(|until| until < now)
                        })
                        .collect();
                    if batch.first().map(|d| &d.id) != Some(&head.id) {
                        continue; // the queue moved meanwhile
                    }
                    let ids: Vec<String> = batch.iter().map(|d| d.id.clone()).collect();
                    let taken = delivery::Entity::update_many()
                        .col_expr(delivery::Column::LeaseOwner, Expr::value(owner))
                        .col_expr(delivery::Column::LeaseUntil, Expr::value(until))
                        .filter(delivery::Column::Id.is_in(ids.clone()))
                        .filter(delivery::Column::Status.eq(PENDING))
                        .filter(free_at(now))
                        .exec(db)
                        .await?;
                    if taken.rows_affected != ids.len() as u64 {
                        // Another instance holds part of it: give back what we got, keep out.
                        self.release_leases(owner, &ids).await?;
                        continue;
                    }
                    let Some(subscription) = hub::Entity::find_by_id(head.subscription_id.clone())
                        .one(db)
                        .await?
                    else {
                        // Unregistered meanwhile: nothing to send. The lease lapses; the queue skips
                        // these deliveries from now on and retention removes them.
                        continue;
                    };
                    let seqs: Vec<i64> = batch.iter().map(|d| d.outbox_seq).collect();
                    let payloads: std::collections::HashMap<i64, String> =
                        event_outbox::Entity::find()
                            .filter(event_outbox::Column::Seq.is_in(seqs))
                            .all(db)
                            .await?
                            .into_iter()
                            .map(|e| (e.seq, e.payload))
                            .collect();
                    batches.push(
                        batch
                            .into_iter()
                            .filter_map(|d| {
                                let payload = payloads.get(&d.outbox_seq)?.clone();
                                Some(Leased {
                                    delivery: d,
                                    callback: subscription.callback.clone(),
                                    secret: subscription.secret.clone(),
                                    payload,
                                })
                            })
                            .collect(),
                    );
                }
                Ok(batches)
            })
            .await
    }

    /// Extends this owner's lease on the deliveries `ids` it still holds to `until`.
    pub async fn renew_leases(
        &self,
        owner: &str,
        ids: &[String],
        until: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.pool()
            .run(|db| async move {
                delivery::Entity::update_many()
                    .col_expr(delivery::Column::LeaseUntil, Expr::value(until))
                    .filter(delivery::Column::Id.is_in(ids.to_vec()))
                    .filter(delivery::Column::LeaseOwner.eq(owner))
                    .filter(delivery::Column::Status.eq(PENDING))
                    .exec(db)
                    .await?;
                Ok(())
            })
            .await
    }

    /// Gives leased deliveries back without an attempt (they stay pending, in order).
    pub async fn release_leases(&self, owner: &str, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        self.pool()
            .run(|db| async move {
                without_lease(delivery::Entity::update_many())
                    .filter(delivery::Column::Id.is_in(ids.to_vec()))
                    .filter(delivery::Column::LeaseOwner.eq(owner))
                    .exec(db)
                    .await?;
                Ok(())
            })
            .await
    }

    /// Gives back every delivery `owner` still holds, as a stopping instance does: they stay
    /// pending, and another instance or the next start sends them at once.
    pub async fn release_all_leases(&self, owner: &str) -> Result<u64, Error> {
        self.pool()
            .run(|db| async move {
                let released = without_lease(delivery::Entity::update_many())
                    .filter(delivery::Column::LeaseOwner.eq(owner))
                    .filter(delivery::Column::Status.eq(PENDING))
                    .exec(db)
                    .await?;
                Ok(released.rows_affected)
            })
            .await
    }

    /// Records the attempts of a batch in one transaction and moves each delivery on:
    /// delivered, retried at its `retry_at`, or dead when that is None. Only the lease
    /// holder's records count.
    pub async fn record_attempts(
        &self,
        owner: &str,
        outcomes: &[(delivery::Model, Attempt, Option<DateTime<Utc>>)],
    ) -> Result<(), Error> {
        self.pool()
            .run(|db| async move {
                if outcomes.is_empty() {
                    return Ok(());
                }
                let now = Utc::now();
                let txn = db.begin().await?;
                let mut attempts = Vec::new();
                for (leased, attempt, retry_at) in outcomes {
                    let mut update = without_lease(delivery::Entity::update_many())
                        .col_expr(delivery::Column::Attempts, Expr::value(leased.attempts + 1))
                        .col_expr(delivery::Column::LastError, Expr::value(describe(attempt)));
                    update = if attempt.succeeded() {
                        update
                            .col_expr(delivery::Column::Status, Expr::value(DELIVERED))
                            .col_expr(delivery::Column::DeliveredAt, Expr::value(now))
                    } else if let Some(retry_at) = retry_at {
                        update.col_expr(delivery::Column::NextAttemptAt, Expr::value(*retry_at))
                    } else {
                        // A dead delivery's `next_attempt_at` is the time of its last attempt:
                        // retention counts its age from there.
                        update
                            .col_expr(delivery::Column::Status, Expr::value(DEAD))
                            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
                    };
                    let updated = update
                        .filter(delivery::Column::Id.eq(leased.id.as_str()))
                        .filter(delivery::Column::LeaseOwner.eq(owner))
                        .exec(&txn)
                        .await?;
                    if updated.rows_affected == 1 {
                        attempts.push(delivery_attempt::ActiveModel {
                            tenant: Set(leased.tenant.clone()),
                            id: Set(crate::resource_kind::new_id()),
                            delivery_id: Set(leased.id.clone()),
                            attempted_at: Set(now),
                            http_status: Set(attempt.http_status.map(i32::from)),
                            error: Set(attempt.error.clone()),
                            duration_ms: Set(attempt.duration_ms),
                        });
                    }
                }
                if !attempts.is_empty() {
                    delivery_attempt::Entity::insert_many(attempts)
                        .exec_without_returning(&txn)
                        .await?;
                }
                txn.commit().await?;
                Ok(())
            })
            .await
    }
}

impl TenantStore {
    /// The deliveries of a subscription of the tenant, newest first, optionally in one status.
    pub async fn deliveries(
        &self,
        subscription_id: &str,
        status: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<delivery::Model>, Error> {
        self.store
            .pool()
            .search(|db| async move {
                let mut select = delivery::Entity::find()
                    .filter(delivery::Column::Tenant.eq(self.tenant.as_str()))
                    .filter(delivery::Column::SubscriptionId.eq(subscription_id));
                if let Some(status) = status {
                    select = select.filter(delivery::Column::Status.eq(status));
                }
                let deliveries = select
                    .order_by_desc(delivery::Column::OutboxSeq)
                    .offset(offset)
                    .limit(limit)
                    .all(db)
                    .await?;
                Ok(deliveries)
            })
            .await
    }

    /// Puts the dead deliveries of a subscription of the tenant back in the queue, in their
    /// original order.
    pub async fn redrive(&self, subscription_id: &str) -> Result<u64, Error> {
        self.store
            .pool()
            .run(|db| async move {
                let result = delivery::Entity::update_many()
                    .col_expr(delivery::Column::Status, Expr::value(PENDING))
                    .col_expr(delivery::Column::Attempts, Expr::value(0))
                    .col_expr(delivery::Column::NextAttemptAt, Expr::value(Utc::now()))
                    .filter(delivery::Column::Tenant.eq(self.tenant.as_str()))
                    .filter(delivery::Column::SubscriptionId.eq(subscription_id))
                    .filter(delivery::Column::Status.eq(DEAD))
                    .exec(db)
                    .await?;
                self.store.changed();
                Ok(result.rows_affected)
            })
            .await
    }
}

/// `update` also clearing the lease of the deliveries it changes.
fn without_lease(
    update: sea_orm::UpdateMany<delivery::Entity>,
) -> sea_orm::UpdateMany<delivery::Entity> {
    update
        .col_expr(
            delivery::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            delivery::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

pub(crate) fn describe(attempt: &Attempt) -> Option<String> {
    match (&attempt.error, attempt.http_status) {
        (Some(error), _) => Some(error.clone()),
        (None, Some(status)) if !(200..300).contains(&status) => Some(format!("HTTP {status}")),
        _ => None,
    }
}

/// Deliveries no one holds a lease on at `now`.
fn free_at(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(delivery::Column::LeaseUntil.is_null())
        .add(delivery::Column::LeaseUntil.lt(now))
}

/// The oldest pending delivery of each registered subscription, where it is due and not
/// leased, oldest first, at most `limit`. Found from the subscriptions (one index probe each),
/// then read by key: a long queue behind a failing head costs nothing here. (A single query
/// with the queue in it is planned as a scan of every pending delivery when the planner
/// misjudges how many there are.) A subscription unregistered has no head: its deliveries
/// wait for retention.
async fn due_heads(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<delivery::Model>, Error> {
    let head_ids: Vec<Option<String>> = hub::Entity::find()
        .select_only()
        .expr(Expr::cust(
            "(SELECT \"queued\".\"id\" FROM \"delivery\" AS \"queued\" \
             WHERE \"queued\".\"subscription_id\" = \"hub\".\"id\" \
             AND \"queued\".\"status\" = 'pending' \
             ORDER BY \"queued\".\"outbox_seq\" LIMIT 1)",
        ))
        .into_tuple()
        .all(db)
        .await?;
    let head_ids: Vec<String> = head_ids.into_iter().flatten().collect();
    let mut heads = Vec::new();
    for chunk in head_ids.chunks(IDS_PER_IN) {
        heads.extend(
            delivery::Entity::find()
                .filter(delivery::Column::Id.is_in(chunk.iter().cloned()))
                .filter(delivery::Column::Status.eq(PENDING))
                .filter(delivery::Column::NextAttemptAt.lte(now))
                .filter(free_at(now))
                .all(db)
                .await?,
        );
    }
    heads.sort_by_key(|d| d.outbox_seq);
    heads.truncate(limit as usize);
    Ok(heads)
}
