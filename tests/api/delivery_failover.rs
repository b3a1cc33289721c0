//! Several instances share the delivery queue on one PostgreSQL: when one is killed while it
//! is sending, the others take its subscriptions over within a lease (seconds, not minutes)
//! and send what it had in flight again under the same event ids.

use crate::fixtures::usage;
use crate::helpers::{id_of, join_all, Backend, ScratchDatabase};
use crate::listener_server::TestListener;
use crate::server_process::ServerProcess;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Usages created; each subscription is owed the event of every one.
const USAGES: usize = 120;
/// How long after the kill every event must have arrived: a few leases (2 s each with the
/// 1 s callback time limit the instances run with), far below what a lease sized for the
/// slowest batch kept a dead instance's work (over a minute).
const TAKEOVER: Duration = Duration::from_secs(15);

#[tokio::test]
async fn postgres_a_killed_instance_holds_delivery_up_for_seconds() {
    let Some(database) = ScratchDatabase::create(Backend::Postgres).await else {
        return;
    };
    let listener = TestListener::start().await;
    // Every callback takes a while, so each instance has deliveries in flight when one dies.
    listener.delay("/", Duration::from_millis(30));
    let fast = [("TMF635_CALLBACK_TIMEOUT_MS", "1000")];
    let a = ServerProcess::start_with(&database.url, true, &fast).await;
    let b = ServerProcess::start_with(&database.url, true, &fast).await;
    let mut c = ServerProcess::start_with(&database.url, true, &fast).await;
    let names = ["s0", "s1", "s2", "s3", "s4", "s5"];
    for name in names {
        a.subscribe(&listener, name).await;
    }
    let creations = (0..USAGES).map(|n| {
        let server = if n % 2 == 0 { &a } else { &b };
        async move { id_of(&server.create("/usage", &usage("VOICE", "rated")).await) }
    });
    let created: BTreeSet<String> = join_all(creations).await.into_iter().collect();
    assert_eq!(created.len(), USAGES);

    // Kill one instance while deliveries are under way.
    listener.wait_for_count("/", USAGES).await;
    c.kill();
    let killed = Instant::now();

    loop {
        let missing: Vec<(&str, usize)> = names
            .iter()
            .map(|name| {
                let got: BTreeSet<String> = listener
                    .accepted(&format!("/{name}/"))
                    .iter()
                    .map(|r| r.resource_id())
                    .collect();
                (*name, created.difference(&got).count())
            })
            .filter(|(_, missing)| *missing > 0)
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < TAKEOVER,
            "{TAKEOVER:?} after the kill, events still missing per subscription: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What was sent twice was sent under the same event id: one id per usage and subscription.
    for name in names {
        let received = listener.accepted(&format!("/{name}/"));
        let ids: BTreeSet<String> = received.iter().map(|r| r.event_id()).collect();
        assert_eq!(ids.len(), USAGES, "{name}: one event id per usage");
    }
}
