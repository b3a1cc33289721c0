//! The real `tmf635` binary in its own process, for what an in-process server cannot show:
//! an event committed just before the process is SIGKILLed is delivered after a restart, two
//! processes sharing one PostgreSQL database deliver each event exactly once, a commit that
//! fails because the disk did ends the process without acknowledging its writes, and the log
//! never shows callback credentials.

use crate::fixtures::usage;
use crate::helpers::{id_of, join_all, Backend, ScratchDatabase};
use crate::listener_server::{Received, TestListener};
use crate::server_process::{free_port, ServerProcess, STARTUP};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often each event id arrived.
fn counts(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in received {
        *counts.entry(r.event_id()).or_insert(0) += 1;
    }
    counts
}

/// A usage is created and committed, the process is SIGKILLed before it could deliver
/// anything (its delivery is off); a new process on the same database delivers the event.
async fn an_event_committed_before_sigkill_is_delivered_after_restart(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let listener = TestListener::start().await;
    let mut first = ServerProcess::start(&database.url, false).await;
    first.subscribe(&listener, "crash").await;
    let created = first.create("/usage", &usage("VOICE", "received")).await;
    first.kill();
    assert!(
        listener.all().is_empty(),
        "nothing was delivered by the process without delivery"
    );

    let second = ServerProcess::start(&database.url, true).await;
    let received = listener.wait_for_count("/crash/", 1).await;
    assert_eq!(received[0].path, "/crash/listener/usageCreateEvent");
    assert_eq!(received[0].body["eventType"], "UsageCreateEvent");
    assert_eq!(
        received[0].body["event"]["usage"], created,
        "the event carries the usage as it was created"
    );
    // The restarted server goes on where the first left off.
    let (status, read) = second.get(&format!("/usage/{}", id_of(&created))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["id"], created["id"]);
    let next = second.create("/usage", &usage("DATA", "received")).await;
    let received = listener.wait_for_count("/crash/", 2).await;
    assert_eq!(received[1].resource_id(), id_of(&next));
    listener
        .assert_quiet("/crash/", 2, Duration::from_millis(300))
        .await;
    assert!(counts(&received).values().all(|n| *n == 1));
}

#[tokio::test]
async fn sqlite_an_event_committed_before_sigkill_is_delivered_after_restart() {
    an_event_committed_before_sigkill_is_delivered_after_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_an_event_committed_before_sigkill_is_delivered_after_restart() {
    an_event_committed_before_sigkill_is_delivered_after_restart(Backend::Postgres).await;
}

/// Sixteen clients create usages as fast as they can and the process is SIGKILLed among them
/// (SQLite commits them in groups): every usage answered 201 is there after a restart, and so
/// is its event.
async fn every_201_survives_a_sigkill_under_concurrent_writes(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let listener = TestListener::start().await;
    let mut first = ServerProcess::start(&database.url, false).await;
    first.subscribe(&listener, "burst").await;
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (first.client.clone(), format!("{}/usage", first.base));
            tokio::spawn(async move {
                let mut answered = Vec::new();
                // Until the process is gone.
                while let Ok(response) = client
                    .post(&url)
                    .json(&usage("DATA", "received"))
                    .send()
                    .await
                {
                    if response.status() != StatusCode::CREATED {
                        continue;
                    }
                    match response.json::<Value>().await {
                        Ok(created) => answered.push(id_of(&created)),
                        Err(_) => break,
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.kill();
    let mut answered = BTreeSet::new();
    for writer in writers {
        answered.extend(writer.await.expect("a writer"));
    }
    assert!(
        answered.len() > 16,
        "the writers got going ({} created)",
        answered.len()
    );

    let second = ServerProcess::start(&database.url, true).await;
    for id in &answered {
        let (status, _) = second.get(&format!("/usage/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "usage {id} was answered 201 before the kill"
        );
    }
    // Usages committed but not yet answered at the kill have events too, so counting
    // deliveries is not enough: wait until each answered usage has its own (or time out).
    let received = listener
        .wait_for("/burst/", "an event for every answered usage", |received| {
            let delivered: BTreeSet<String> = received.iter().map(Received::resource_id).collect();
            answered.is_subset(&delivered)
        })
        .await;
    assert!(received.len() >= answered.len());
}

#[tokio::test]
async fn sqlite_every_201_survives_a_sigkill_under_concurrent_writes() {
    every_201_survives_a_sigkill_under_concurrent_writes(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_every_201_survives_a_sigkill_under_concurrent_writes() {
    every_201_survives_a_sigkill_under_concurrent_writes(Backend::Postgres).await;
}

/// Two delivering processes on one PostgreSQL database, events created through both: each
/// subscription gets every event exactly once, and (for events created one after another)
/// in the order they were committed.
#[tokio::test]
async fn postgres_two_processes_deliver_each_event_exactly_once() {
    let Some(database) = ScratchDatabase::create(Backend::Postgres).await else {
        return;
    };
    let listener = TestListener::start().await;
    let a = ServerProcess::start(&database.url, true).await;
    let b = ServerProcess::start(&database.url, true).await;
    let first = a.subscribe(&listener, "one").await;
    let second = b.subscribe(&listener, "two").await;

    // One after another, alternating between the processes: a known commit order.
    let mut in_order = Vec::new();
    for n in 0..10 {
        let server = if n % 2 == 0 { &a } else { &b };
        let created = server.create("/usage", &usage("VOICE", "received")).await;
        in_order.push(id_of(&created));
    }
    // Then at the same time through both.
    let creations = (0..40).map(|n| {
        let server = if n % 2 == 0 { &a } else { &b };
        async move { id_of(&server.create("/usage", &usage("DATA", "rated")).await) }
    });
    let concurrent = join_all(creations).await;
    let mut expected: BTreeSet<String> = in_order.iter().cloned().collect();
    expected.extend(concurrent.iter().cloned());
    assert_eq!(expected.len(), 50);

    for (name, subscription) in [("one", &first), ("two", &second)] {
        let prefix = format!("/{name}/");
        listener
            .wait_for(&prefix, "50 distinct events", |r| {
                counts(r).len() >= expected.len()
            })
            .await;
        a.wait_all_delivered(subscription, 50).await;
        listener
            .assert_quiet(&prefix, 50, Duration::from_millis(500))
            .await;
        let received = listener.accepted(&prefix);
        let duplicated: Vec<_> = counts(&received)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(
            duplicated.is_empty(),
            "{name}: delivered twice: {duplicated:?}"
        );
        let resources: BTreeSet<String> = received.iter().map(Received::resource_id).collect();
        assert_eq!(
            resources, expected,
            "{name}: every usage's event, none missing"
        );
        assert!(received
            .iter()
            .all(|r| r.path == format!("/{name}/listener/usageCreateEvent")));
        let first_ten: Vec<String> = received
            .iter()
            .map(Received::resource_id)
            .filter(|id| in_order.contains(id))
            .collect();
        assert_eq!(first_ten, in_order, "{name}: in commit order");
    }
    assert!(
        listener.refused("/").is_empty(),
        "the listener never refused anything"
    );
}

/// The sync of the SQLite writer's WAL fails as a failing disk would make it fail (the
/// test-only `TMF635_TEST_FAIL_SYNC_AFTER=3`: the fourth sync, of the fourth batch). The
/// process ends with a non-zero status without answering the write of that batch with a 2xx;
/// after a restart every usage that was acknowledged is there, and besides them at most the
/// unacknowledged one.
#[tokio::test]
async fn sqlite_a_failed_sync_ends_the_process_without_acknowledging_it() {
    let Some(database) = ScratchDatabase::create(Backend::Sqlite).await else {
        return;
    };
    let env = [("TMF635_TEST_FAIL_SYNC_AFTER", "3")];
    let mut first = ServerProcess::start_with(&database.url, false, &env).await;
    let url = format!("{}/usage", first.base);
    let mut acknowledged = Vec::new();
    let mut unacknowledged = None;
    // One create after another: each is a batch of its own.
    for _ in 0..5 {
        let answer = first
            .client
            .post(&url)
            .json(&usage("VOICE", "received"))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                let created: Value = response.json().await.expect("the created usage");
                acknowledged.push(id_of(&created));
            }
            other => {
                unacknowledged = Some(other.map(|response| response.status()));
                break;
            }
        }
    }
    assert_eq!(
        acknowledged.len(),
        3,
        "the creates before the failed sync are answered 201:\n{}",
        first.log()
    );
    assert!(
        unacknowledged.is_some(),
        "the create of the failed sync got no 2xx"
    );
    let status = first.wait_for_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(70),
        "exit status; log:\n{}",
        first.log()
    );
    assert!(first.log().contains("disk failed"), "{}", first.log());

    let second = ServerProcess::start(&database.url, false).await;
    for id in &acknowledged {
        let (status, _) = second.get(&format!("/usage/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged usage {id} is there");
    }
    let (status, listed) = second.get("/usage").await;
    assert_eq!(status, StatusCode::OK);
    let stored = listed.as_array().map_or(0, Vec::len);
    assert!(
        (3..=4).contains(&stored),
        "the acknowledged usages and at most the unacknowledged one: {listed}"
    );
}

/// A read sees the SQLite writer's commit only once that commit is synced: with every WAL
/// sync slowed to a second (the test-only `TMF635_TEST_SYNC_DELAY_MS`), lists polled while a
/// create is in flight never show the new usage before its sync, though the commit is visible
/// to their connections long before.
#[tokio::test]
async fn sqlite_a_read_waits_for_the_sync_of_what_it_sees() {
    let Some(database) = ScratchDatabase::create(Backend::Sqlite).await else {
        return;
    };
    let delay = Duration::from_millis(1000);
    let env = [("TMF635_TEST_SYNC_DELAY_MS", "1000")];
    let server = ServerProcess::start_with(&database.url, false, &env).await;
    let sent = Instant::now();
    let body = usage("VOICE", "received");
    let create = server.create("/usage", &body);
    let poll = async {
        let mut seen_after = None;
        while seen_after.is_none() && sent.elapsed() < delay * 5 {
            let (status, listed) = server.get("/usage?fields=id").await;
            assert_eq!(status, StatusCode::OK, "{listed}");
            if listed.as_array().is_some_and(|items| !items.is_empty()) {
                seen_after = Some(sent.elapsed());
            }
        }
        seen_after
    };
    let (created, seen_after) = tokio::join!(create, poll);
    let answered_after = sent.elapsed();
    assert!(created["id"].is_string(), "{created}");
    let seen_after = seen_after.expect("the usage is listed once synced");
    assert!(
        seen_after >= delay,
        "listed {seen_after:?} after the create was sent, before its sync ({delay:?})"
    );
    assert!(answered_after >= delay, "answered before its sync");
}

/// Callback credentials (user, password, query) never reach the log, where failed deliveries
/// are logged with their callback and the full error.
async fn the_log_never_shows_callback_credentials(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let down = TestListener::start().await;
    down.set_down(true);
    let closed = free_port();
    let server = ServerProcess::start(&database.url, true).await;
    let callbacks = [
        format!(
            "http://alice:s3cret@127.0.0.1:{}/down?token=t0ken",
            down.port()
        ),
        format!("http://alice:s3cret@127.0.0.1:{closed}/closed?token=t0ken"),
    ];
    let mut subscriptions = Vec::new();
    for callback in &callbacks {
        let created = server.create("/hub", &json!({"callback": callback})).await;
        subscriptions.push(id_of(&created));
    }
    server.create("/usage", &usage("DATA", "received")).await;
    let started = Instant::now();
    for id in &subscriptions {
        loop {
            let (status, deliveries) = server.get(&format!("/hub/{id}/delivery")).await;
            assert_eq!(status, StatusCode::OK);
            if deliveries[0]["attempts"].as_i64() >= Some(2) {
                break;
            }
            assert!(
                started.elapsed() < STARTUP,
                "{deliveries}\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let log = server.log();
    assert!(
        log.contains("event delivery failed") && log.contains("http://***:***@127.0.0.1"),
        "failed deliveries are logged, their callbacks redacted:\n{log}"
    );
    for secret in ["alice", "s3cret", "t0ken"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test]
async fn sqlite_the_log_never_shows_callback_credentials() {
    the_log_never_shows_callback_credentials(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_the_log_never_shows_callback_credentials() {
    the_log_never_shows_callback_credentials(Backend::Postgres).await;
}
