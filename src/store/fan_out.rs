//! Fanning outbox events out to the delivery queue: one delivery per event and subscription
//! whose query matches, in the same transaction that takes the events off `event_pending`.

use super::delivery::PENDING;
use super::Store;
use crate::error::Error;
use crate::events::subscription_query::SubscriptionQuery;
use chrono::Utc;
use entity::{delivery, event_outbox, event_pending, hub};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

impl Store {
    /// Fans the oldest pending outbox events out to the subscriptions whose query matches,
    /// and takes them off `event_pending`. The guarded DELETE comes first, so when two
    /// instances race for the same events one of them deletes fewer than it read and rolls
    /// back. Returns how many events it took. With no subscription at all, the events are
    /// only taken off the list (their payloads not read).
    pub async fn dispatch_events(&self, batch: u64) -> Result<usize, Error> {
        self.pool()
            .run(|db| async move {
                let seqs: Vec<i64> = event_pending::Entity::find()
                    .select_only()
                    .column(event_pending::Column::Seq)
                    .order_by_asc(event_pending::Column::Seq)
                    .limit(batch)
                    .into_tuple()
                    .all(db)
                    .await?;
                if seqs.is_empty() {
                    return Ok(0);
                }
                // Read after the events: a subscription missing here was registered after they
                // were committed, so it is owed none of them.
                let subscriptions: Vec<(hub::Model, Option<SubscriptionQuery>)> =
                    hub::Entity::find()
                        .all(db)
                        .await?
                        .into_iter()
                        .map(|s| {
                            // A stored query was checked at registration; one that no longer parses (after
                            // an upgrade) matches nothing rather than everything.
                            let query =
                                SubscriptionQuery::parse(s.query.as_deref().unwrap_or("")).ok();
                            (s, query)
                        })
                        .collect();
                let rows = if subscriptions.is_empty() {
                    Vec::new()
                } else {
                    let events = event_outbox::Entity::find()
                        .filter(event_outbox::Column::Seq.is_in(seqs.iter().copied()))
                        .order_by_asc(event_outbox::Column::Seq)
                        .all(db)
                        .await?;
                    deliveries(&events, &subscriptions)
                };
                let taken = seqs.len();
                // Through the writer: on SQLite this joins the next group commit instead of
                // contending with it for the write lock.
                let dispatched = self
                    .write(move |txn| {
                        Box::pin(async move {
                            let taken_off = event_pending::Entity::delete_many()
                                .filter(event_pending::Column::Seq.is_in(seqs))
                                .exec(txn)
                                .await?;
                            if taken_off.rows_affected != taken as u64 {
                                // Another instance took some of them: undo, try again next round.
                                return Err(Error::Conflict(
                                    "events taken by another instance".into(),
                                ));
                            }
                            // Only for subscriptions still registered: one unregistered since they
                            // were read gets none (its record may already be gone, and nothing would
                            // ever remove them).
                            let rows = if rows.is_empty() {
                                rows
                            } else {
                                let registered: std::collections::HashSet<String> =
                                    hub::Entity::find()
                                        .select_only()
                                        .column(hub::Column::Id)
                                        .into_tuple()
                                        .all(txn)
                                        .await?
                                        .into_iter()
                                        .collect();
                                rows.into_iter()
                                    .filter(|row| match &row.subscription_id {
                                        sea_orm::ActiveValue::Set(id) => registered.contains(id),
                                        _ => false,
                                    })
                                    .collect()
                            };
                            for chunk in rows.chunks(500) {
                                delivery::Entity::insert_many(chunk.to_vec())
                                    .exec_without_returning(txn)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .await;
                match dispatched {
                    Ok(()) => Ok(taken),
                    Err(Error::Conflict(_)) => Ok(0),
                    Err(e) => Err(e),
                }
            })
            .await
    }
}

/// The deliveries of `events` to the subscriptions of their tenant whose query matches, each
/// subscription getting only the events of after its registration.
fn deliveries(
    events: &[event_outbox::Model],
    subscriptions: &[(hub::Model, Option<SubscriptionQuery>)],
) -> Vec<delivery::ActiveModel> {
    let now = Utc::now();
    let mut rows = Vec::new();
    for event in events {
        // The payload is our own JSON; one that does not parse (never expected) matches no
        // query, so it is not sent rather than sent to everyone.
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
        for (subscription, query) in subscriptions {
            if subscription.tenant != event.tenant
                || subscription.created_at > event.event_time
                || !query.as_ref().is_some_and(|q| q.matches(&payload))
            {
                continue;
            }
            rows.push(delivery::ActiveModel {
                tenant: Set(event.tenant.clone()),
                id: Set(crate::resource_kind::new_id()),
                subscription_id: Set(subscription.id.clone()),
                outbox_seq: Set(event.seq),
                event_id: Set(event.id.clone()),
                event_type: Set(event.event_type.clone()),
                status: Set(PENDING.into()),
                attempts: Set(0),
                next_attempt_at: Set(now),
                lease_owner: Set(None),
                lease_until: Set(None),
                last_error: Set(None),
                created_at: Set(now),
                delivered_at: Set(None),
            });
        }
    }
    rows
}
