//! The migration that moved "not yet dispatched" from a flag on the outbox row to the
//! `event_pending` table: an event an older version had written but not dispatched is still
//! delivered after the upgrade, and one it had dispatched is not delivered again; undone,
//! the flag says again which events are still to be dispatched. Also the later move of the
//! outbox payload from `jsonb` to text (and back), which must keep every payload.

use crate::helpers::{older_schema, Backend, ScratchDatabase, TestApp};
use crate::listener_server::TestListener;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement,
};
use serde_json::{json, Value};
use std::time::Duration;

/// Writes a `UsageCreateEvent` of `usage` to the outbox of an older schema (its payload still
/// `jsonb` on PostgreSQL), seq given by the database.
async fn insert_event(db: &DatabaseConnection, event: &str, usage: &str, payload: Value) {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO event_outbox (id, event_type, resource_type, resource_id, event_time, payload) \
             VALUES ($1, 'UsageCreateEvent', 'usage', $2, $3, CAST($4 AS jsonb))"
        }
        _ => {
            "INSERT INTO event_outbox (id, event_type, resource_type, resource_id, event_time, payload) \
             VALUES (?, 'UsageCreateEvent', 'usage', ?, ?, ?)"
        }
    };
    let values = [
        event.into(),
        usage.into(),
        chrono::Utc::now().into(),
        payload.to_string().into(),
    ];
    db.execute(Statement::from_sql_and_values(backend, sql, values))
        .await
        .expect("an outbox event");
}

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
                // The column comes with a later migration than this schema's.
                tenant: sea_orm::ActiveValue::NotSet,
                id: Set("old-hub".into()),
                callback: Set(callback),
                query: Set(None),
                created_at: Set(now),
                // The column comes with a later migration than this schema's.
                secret: sea_orm::ActiveValue::NotSet,
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
                insert_event(&db, event, usage, payload).await;
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

/// Undoing the migration puts the flag back: set on the events taken, clear on the pending.
async fn undone_the_flag_is_back(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = older_schema(&database.url, 3).await;
    for event in ["ev-taken", "ev-pending"] {
        insert_event(&db, event, "u-1", json!({"eventId": event})).await;
    }
    db.execute_unprepared(
        "INSERT INTO event_pending (seq) SELECT seq FROM event_outbox WHERE id = 'ev-pending'",
    )
    .await
    .expect("one event pending");
    <migration::Migrator as migration::MigratorTrait>::down(&db, Some(1))
        .await
        .expect("the migration undone");
    let undispatched = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM event_outbox WHERE NOT dispatched",
        ))
        .await
        .expect("the flag")
        .iter()
        .map(|row| row.try_get::<String>("", "id").expect("an id"))
        .collect::<Vec<_>>();
    assert_eq!(undispatched, vec!["ev-pending".to_string()]);
    db.close().await.expect("closed");
}

#[tokio::test]
async fn sqlite_undone_the_flag_is_back() {
    undone_the_flag_is_back(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_undone_the_flag_is_back() {
    undone_the_flag_is_back(Backend::Postgres).await;
}

/// The payloads an older version stored (`jsonb` on PostgreSQL) read back as the same JSON
/// after the outbox moved to text, and again once that is undone.
async fn payloads_survive_the_move_to_text(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let db = older_schema(&database.url, 3).await;
    let payload =
        json!({"eventId": "ev-1", "event": {"usage": {"id": "u-1", "b": 1, "a": [true]}}});
    insert_event(&db, "ev-1", "u-1", payload.clone()).await;
    <migration::Migrator as migration::MigratorTrait>::up(&db, None)
        .await
        .expect("migrated");
    let stored = entity::event_outbox::Entity::find()
        .one(&db)
        .await
        .expect("the entity reads text")
        .expect("the event");
    assert_eq!(
        serde_json::from_str::<Value>(&stored.payload).expect("JSON"),
        payload
    );
    <migration::Migrator as migration::MigratorTrait>::down(&db, Some(1))
        .await
        .expect("the move undone");
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(payload AS TEXT) AS payload FROM event_outbox WHERE id = 'ev-1'",
        ))
        .await
        .expect("the event")
        .expect("one row");
    let undone: String = row.try_get("", "payload").expect("text");
    assert_eq!(
        serde_json::from_str::<Value>(&undone).expect("JSON"),
        payload
    );
    db.close().await.expect("closed");
}

#[tokio::test]
async fn sqlite_payloads_survive_the_move_to_text() {
    payloads_survive_the_move_to_text(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_payloads_survive_the_move_to_text() {
    payloads_survive_the_move_to_text(Backend::Postgres).await;
}
