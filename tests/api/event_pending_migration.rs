//! The migration that moved "not yet dispatched" from a flag on the outbox row to the
//! `event_pending` table: an event an older version had written but not dispatched is still
//! delivered after the upgrade, and one it had dispatched is not delivered again.

use crate::helpers::{older_schema, Backend, TestApp};
use crate::listener_server::TestListener;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;
use std::time::Duration;

async fn undispatched_events_of_an_older_version_are_delivered_once(backend: Backend) {
    let listener = TestListener::start().await;
    let callback = listener.url("/old");
    let prepared = TestApp::spawn_prepared(
        backend,
        |_| {},
        |url| async move {
            let db = older_schema(&url, 2).await;
            let now = chrono::Utc::now();
            entity::hub::Entity::insert(entity::hub::ActiveModel {
                id: Set("old-hub".into()),
                callback: Set(callback),
                query: Set(None),
                created_at: Set(now),
            })
            .exec_without_returning(&db)
            .await
            .expect("a subscription");
            for (event, usage) in [("ev-dispatched", "u-1"), ("ev-pending", "u-2")] {
                let payload = json!({
                    "eventId": event,
                    "eventTime": now.to_rfc3339(),
                    "eventType": "UsageCreateEvent",
                    "event": {"usage": {"id": usage}}
                });
                entity::event_outbox::Entity::insert(entity::event_outbox::ActiveModel {
                    id: Set(event.into()),
                    event_type: Set("UsageCreateEvent".into()),
                    resource_type: Set("usage".into()),
                    resource_id: Set(usage.into()),
                    event_time: Set(now),
                    payload: Set(payload),
                    ..Default::default()
                })
                .exec_without_returning(&db)
                .await
                .expect("an outbox event");
            }
            // The older version's flag (the column the entity no longer has).
            db.execute_unprepared(
                "UPDATE event_outbox SET dispatched = true WHERE id = 'ev-dispatched'",
            )
            .await
            .expect("the first event dispatched");
            db.close().await.expect("closed");
        },
    )
    .await;
    let Some(_app) = prepared else { return };
    let received = listener.wait_for_count("/old", 1).await;
    assert_eq!(received[0].event_id(), "ev-pending");
    listener
        .assert_quiet("/old", 1, Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn sqlite_undispatched_events_of_an_older_version_are_delivered_once() {
    undispatched_events_of_an_older_version_are_delivered_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_undispatched_events_of_an_older_version_are_delivered_once() {
    undispatched_events_of_an_older_version_are_delivered_once(Backend::Postgres).await;
}
