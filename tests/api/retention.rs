//! Retention: with ages of a second and a pass every 100 ms, delivered deliveries with their
//! attempts, outbox rows nothing needs any more and received events go, while pending and
//! dead deliveries and the events they need stay (a dead one can still be re-driven); rows
//! go while creates go on, none of them failing or lost; unregistering a subscription with
//! thousands of queued deliveries answers at once, its deliveries go over the following
//! passes and none is sent after it. Rows are counted in the database itself.

use crate::events::{impatient, patient};
use crate::fixtures::usage;
use crate::helpers::{id_of, join_all, json_body, TestApp};
use crate::listener_server::{TestListener, DEADLINE};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tmf635::Config;

/// Ages of a second (dead deliveries: an hour), a pass every 100 ms.
fn short_ages(c: &mut Config) {
    c.retain_delivered_secs = 1;
    c.retain_dead_secs = 3600;
    c.retain_received_events_secs = 1;
    c.retention_interval_ms = 100;
}

/// `patient` delivery (retrying forever) with `short_ages`.
fn keeping(c: &mut Config) {
    patient(c);
    short_ages(c);
}

/// `impatient` delivery (dead after two attempts) with `short_ages`.
fn dying(c: &mut Config) {
    impatient(c);
    short_ages(c);
}

/// `dying`, dead deliveries kept a second only.
fn dying_briefly(c: &mut Config) {
    dying(c);
    c.retain_dead_secs = 1;
}

/// A connection of the test's own to the server's database.
async fn database(app: &TestApp) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(app.database_url());
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options)
        .await
        .expect("the test's connection to the server's database")
}

/// The rows that retention is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    delivered: i64,
    pending: i64,
    dead: i64,
    attempts: i64,
    outbox: i64,
    received: i64,
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row");
    row.try_get_by_index(0).expect("a count")
}

async fn rows(db: &DatabaseConnection) -> Rows {
    let status = |s: &str| format!("SELECT COUNT(*) FROM delivery WHERE status = '{s}'");
    Rows {
        delivered: count(db, &status("delivered")).await,
        pending: count(db, &status("pending")).await,
        dead: count(db, &status("dead")).await,
        attempts: count(db, "SELECT COUNT(*) FROM delivery_attempt").await,
        outbox: count(db, "SELECT COUNT(*) FROM event_outbox").await,
        received: count(db, "SELECT COUNT(*) FROM received_event").await,
    }
}

/// Waits until the rows are as `done` says; fails the test after `DEADLINE`.
async fn wait_for_rows(db: &DatabaseConnection, what: &str, done: impl Fn(&Rows) -> bool) -> Rows {
    let started = Instant::now();
    loop {
        let now = rows(db).await;
        if done(&now) {
            return now;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}; the rows: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers `callback`; answers the subscription's id.
async fn subscribe(app: &TestApp, callback: &str) -> String {
    id_of(&app.create("/hub", &json!({ "callback": callback })).await)
}

/// Creates `n` usages, `at_once` at a time, asserting each 201; answers their ids.
async fn create_usages(app: &TestApp, n: usize, at_once: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(at_once) {
        let created = join_all(chunk.iter().map(|i| async move {
            let body = usage(&format!("retained-{i}"), "received");
            app.create("/usage", &body).await
        }))
        .await;
        ids.extend(created.iter().map(id_of));
    }
    ids
}

/// An event as another server sends it to `/listener/usageCreateEvent`.
fn received_event(n: usize) -> Value {
    let mut usage = usage("voice", "received");
    usage["id"] = json!(format!("upstream-{n}"));
    json!({
        "eventId": format!("upstream-evt-{n}"),
        "eventTime": "2024-05-01T10:00:00.123Z",
        "eventType": "UsageCreateEvent",
        "event": {"usage": usage}
    })
}

/// A listener answering 503 under `/down/`, subscribed; `n` usages created. Answers the
/// listener, the subscription's id and the usages' ids.
async fn failing_deliveries(app: &TestApp, n: usize) -> (TestListener, String, BTreeSet<String>) {
    let listener = TestListener::start().await;
    listener.set_down(true);
    let id = subscribe(app, &listener.url("/down")).await;
    let ids = create_usages(app, n, n).await.into_iter().collect();
    (listener, id, ids)
}

mod kept_while_needed {
    use super::*;
    crate::backend_tests_with! {
        keeping;

        async fn delivered_rows_and_received_events_go_pending_ones_and_their_events_stay(app) {
            let db = database(&app).await;
            let listener = TestListener::start().await;
            subscribe(&app, &listener.url("/ok")).await;
            // Nothing listens on port 1: these stay pending, retried for ever.
            let stuck = subscribe(&app, "http://127.0.0.1:1/stuck").await;
            let ids = create_usages(&app, 5, 5).await;
            listener.wait_for_count("/ok/", 5).await;
            for n in 0..3 {
                let response = app.post("/listener/usageCreateEvent", &received_event(n)).await;
                assert!(response.status().is_success(), "{}", response.status());
            }
            let after = wait_for_rows(&db, "the delivered deliveries and received events to go", |r| {
                r.delivered == 0 && r.received == 0
            })
            .await;
            // Let a few more passes run: what is still needed stays.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let now = rows(&db).await;
            assert_eq!(now.pending, ids.len() as i64, "{after:?} {now:?}");
            assert_eq!(now.outbox, ids.len() as i64, "the pending deliveries' events stay: {now:?}");
            assert!(now.attempts > 0, "the pending head's attempts stay: {now:?}");
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM delivery_attempt WHERE NOT EXISTS \
                     (SELECT 1 FROM delivery WHERE delivery.id = delivery_attempt.delivery_id)"
                )
                .await,
                0,
                "no attempt outlives its delivery"
            );
            // Unregistering leaves the rest to retention: then everything goes.
            assert_eq!(app.delete(&format!("/hub/{stuck}")).await.status(), StatusCode::NO_CONTENT);
            assert_eq!(app.get(&format!("/hub/{stuck}/delivery")).await.status(), StatusCode::NOT_FOUND);
            wait_for_rows(&db, "every row to go", |r| {
                *r == Rows { delivered: 0, pending: 0, dead: 0, attempts: 0, outbox: 0, received: 0 }
            })
            .await;
        }

        async fn retention_removes_old_rows_while_creates_go_on(app) {
            let db = database(&app).await;
            let listener = TestListener::start().await;
            subscribe(&app, &listener.url("/all")).await;
            // 8 clients creating for at least 3 s (three ages of the rows), and on until
            // retention has been seen removing events while they go on.
            let created_so_far = AtomicI64::new(0);
            let removed_seen = AtomicBool::new(false);
            let creating = AtomicBool::new(true);
            let started = Instant::now();
            let clients = async {
                let clients = join_all((0..8).map(|client| {
                    let (app, created_so_far, removed_seen) = (&app, &created_so_far, &removed_seen);
                    async move {
                        let mut ids = Vec::new();
                        let mut n = 0;
                        while started.elapsed() < Duration::from_secs(3)
                            || (!removed_seen.load(Ordering::SeqCst) && started.elapsed() < DEADLINE)
                        {
                            let body = usage(&format!("concurrent-{client}-{n}"), "received");
                            let response = app.post("/usage", &body).await;
                            assert_eq!(response.status(), StatusCode::CREATED, "POST /usage");
                            ids.push(id_of(&json_body(response).await));
                            created_so_far.fetch_add(1, Ordering::SeqCst);
                            n += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        ids
                    }
                }))
                .await;
                creating.store(false, Ordering::SeqCst);
                clients
            };
            let watcher = async {
                while creating.load(Ordering::SeqCst) {
                    // Created (committed) first, then counted: fewer rows than that means some
                    // were removed.
                    let created = created_so_far.load(Ordering::SeqCst);
                    if count(&db, "SELECT COUNT(*) FROM event_outbox").await < created {
                        removed_seen.store(true, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            let (clients, ()) = tokio::join!(clients, watcher);
            let created: BTreeSet<String> = clients.into_iter().flatten().collect();
            assert!(
                removed_seen.load(Ordering::SeqCst),
                "retention removed events while {} creates went on",
                created.len()
            );
            listener
                .wait_for("/all/", "every created usage", |received| {
                    let delivered: BTreeSet<String> =
                        received.iter().map(|r| r.resource_id()).collect();
                    created.is_subset(&delivered)
                })
                .await;
            wait_for_rows(&db, "every row to go", |r| {
                r.delivered == 0 && r.pending == 0 && r.attempts == 0 && r.outbox == 0
            })
            .await;
        }

        async fn unregistering_a_subscription_with_thousands_queued_is_quick(app) {
            let db = database(&app).await;
            let listener = TestListener::start().await;
            listener.set_down(true);
            let id = subscribe(&app, &listener.url("/many")).await;
            create_usages(&app, 2_000, 50).await;
            let queued = format!("SELECT COUNT(*) FROM delivery WHERE subscription_id = '{id}'");
            let started = Instant::now();
            while count(&db, &queued).await < 2_000 {
                assert!(started.elapsed() < DEADLINE, "the 2,000 deliveries are queued");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let started = Instant::now();
            assert_eq!(app.delete(&format!("/hub/{id}")).await.status(), StatusCode::NO_CONTENT);
            let took = started.elapsed();
            assert!(took < Duration::from_secs(1), "unregistering took {took:?}");
            listener.set_down(false);
            // An attempt already on its way when the subscription went may still land.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let seen = listener.all().len();
            assert_eq!(app.get(&format!("/hub/{id}/delivery")).await.status(), StatusCode::NOT_FOUND);
            let started = Instant::now();
            while count(&db, &queued).await > 0 {
                assert!(started.elapsed() < DEADLINE, "the deliveries go");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            wait_for_rows(&db, "every delivery row to go", |r| {
                r.pending == 0 && r.attempts == 0 && r.outbox == 0
            })
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(listener.all().len(), seen, "nothing is sent after unregistering");
            assert!(listener.accepted("/many/").is_empty(), "nothing is delivered");
        }
    }
}

mod dead_deliveries {
    use super::*;
    crate::backend_tests_with! {
        dying;

        async fn a_dead_delivery_keeps_its_event_and_can_be_redriven(app) {
            let db = database(&app).await;
            let (listener, id, ids) = failing_deliveries(&app, 3).await;
            wait_for_rows(&db, "three dead deliveries", |r| r.dead == 3).await;
            // Older than the delivered age, younger than the dead one: kept.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let now = rows(&db).await;
            assert_eq!((now.dead, now.attempts, now.outbox), (3, 6, 3), "{now:?}");
            listener.set_down(false);
            let redriven = app
                .client
                .post(app.url(&format!("/hub/{id}/redrive")))
                .send()
                .await
                .expect("POST /hub/{id}/redrive answers");
            assert_eq!(redriven.status(), StatusCode::OK);
            assert_eq!(json_body(redriven).await["redriven"], 3);
            let delivered: BTreeSet<String> = listener
                .wait_for_count("/down/", 3)
                .await
                .iter()
                .map(|r| r.resource_id())
                .collect();
            assert_eq!(delivered, ids);
            wait_for_rows(&db, "every row to go", |r| {
                r.delivered == 0 && r.dead == 0 && r.attempts == 0 && r.outbox == 0
            })
            .await;
        }
    }
}

mod dead_deliveries_briefly {
    use super::*;
    crate::backend_tests_with! {
        dying_briefly;

        async fn dead_deliveries_and_their_events_go_after_their_age(app) {
            let db = database(&app).await;
            let (listener, _, _) = failing_deliveries(&app, 2).await;
            let started = Instant::now();
            while listener.refused("/down/").len() < 4 {
                assert!(started.elapsed() < DEADLINE, "two attempts of each delivery");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            wait_for_rows(&db, "the dead deliveries and their events to go", |r| {
                r.dead == 0 && r.pending == 0 && r.attempts == 0 && r.outbox == 0
            })
            .await;
        }
    }
}
