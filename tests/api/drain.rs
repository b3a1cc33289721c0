//! The real binary for what needs a process: JSON request logs with their request id,
//! readiness failing on a stalled disk and while draining, and deliveries in flight at a
//! SIGTERM sent at once by the next start.

use crate::fixtures::usage;
use crate::helpers::{Backend, ScratchDatabase};
use crate::listener_server::TestListener;
use crate::server_process::ServerProcess;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn readiness(server: &ServerProcess) -> (StatusCode, Value) {
    let response = server
        .client
        .get(format!("{}/health/ready", server.root()))
        .send()
        .await
        .expect("readiness answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sqlite_every_request_logs_one_json_line_with_its_request_id() {
    let database = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let server =
        ServerProcess::start_with(&database.url, true, &[("TMF635_LOG_FORMAT", "json")]).await;
    let sent = server
        .client
        .get(format!("{}/usage?usageType=personal-value-42", server.base))
        .header("x-request-id", "probe-7.a:b_c")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert_eq!(
        sent.headers()["x-request-id"],
        "probe-7.a:b_c",
        "a sent id is echoed"
    );
    let generated = server
        .client
        .get(format!("{}/usage/nothing", server.base))
        .header("x-request-id", "not a token!")
        .send()
        .await
        .unwrap();
    let generated_id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        uuid::Uuid::parse_str(&generated_id).is_ok(),
        "{generated_id} replaces a malformed id"
    );

    let started = Instant::now();
    let lines = loop {
        let log = server.log();
        let lines: Vec<Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == "request")
            .collect();
        if lines
            .iter()
            .any(|l| l["request_id"] == generated_id.as_str())
        {
            assert!(
                !log.contains("personal-value-42"),
                "a filter value was logged:\n{log}"
            );
            break lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no request line:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let line = lines
        .iter()
        .find(|l| l["request_id"] == "probe-7.a:b_c")
        .expect("the sent id is logged");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "listUsage");
    assert_eq!(line["status"], 200);
    assert!(
        line["ms"].is_number() && line["bytes"].is_number(),
        "{line}"
    );
    assert_eq!(line["level"], "INFO");
    let other = lines
        .iter()
        .find(|l| l["request_id"] == generated_id.as_str())
        .unwrap();
    assert_eq!(other["route"], "retrieveUsage");
    assert_eq!(other["status"], 404);
}

/// A WAL sync that takes longer than the check's time limit, as a stalled disk would:
/// readiness fails on the writer. (Reads wait for the sync of what the writer has begun, so
/// the database check may fail too.)
#[tokio::test]
async fn sqlite_readiness_fails_when_the_writer_stalls() {
    let database = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let server = ServerProcess::start_with(
        &database.url,
        true,
        &[("TMF635_TEST_SYNC_DELAY_MS", "3000")],
    )
    .await;
    let (status, body) = readiness(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["writer"]["status"], "fail", "{body}");
    assert_eq!(body["checks"]["draining"]["status"], "pass", "{body}");
}

/// SIGTERM with a drain delay: readiness fails at once while requests are still served,
/// then the process ends by itself.
async fn readiness_fails_during_a_drain(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let mut server =
        ServerProcess::start_with(&database.url, true, &[("TMF635_DRAIN_DELAY_MS", "3000")]).await;
    let (status, body) = readiness(&server).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.terminate();
    let started = Instant::now();
    let body = loop {
        let (status, body) = readiness(&server).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["checks"]["draining"]["status"], "fail", "{body}");
    let (status, _) = server.get("/usage").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "requests are served during the drain delay"
    );
    let exit = server.wait_for_exit(Duration::from_secs(15)).await;
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn sqlite_readiness_fails_during_a_drain() {
    readiness_fails_during_a_drain(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_readiness_fails_during_a_drain() {
    readiness_fails_during_a_drain(Backend::Postgres).await;
}

/// A delivery in flight to a slow listener at SIGTERM is handed back: the next start sends
/// it again within seconds, not after its lease (here 40 s) runs out.
async fn deliveries_in_flight_at_sigterm_are_sent_at_the_next_start(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let listener = TestListener::start().await;
    listener.delay("/slow/", Duration::from_secs(60));
    let env = [
        ("TMF635_CALLBACK_TIMEOUT_MS", "20000"),
        ("TMF635_SHUTDOWN_GRACE_MS", "500"),
    ];
    let mut first = ServerProcess::start_with(&database.url, true, &env).await;
    first.subscribe(&listener, "slow").await;
    first.create("/usage", &usage("VOICE", "received")).await;
    listener.wait_for_count("/slow/", 1).await;
    first.terminate();
    let exit = first.wait_for_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit}");
    assert!(
        first.log().contains("deliveries in flight handed back"),
        "{}",
        first.log()
    );

    let restarted = Instant::now();
    let _second = ServerProcess::start_with(&database.url, true, &env).await;
    let received = listener.wait_for_count("/slow/", 2).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(8),
        "sent again after {:?}",
        restarted.elapsed()
    );
    assert_eq!(received[0].event_id(), received[1].event_id());
}

#[tokio::test]
async fn sqlite_deliveries_in_flight_at_sigterm_are_sent_at_the_next_start() {
    deliveries_in_flight_at_sigterm_are_sent_at_the_next_start(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_deliveries_in_flight_at_sigterm_are_sent_at_the_next_start() {
    deliveries_in_flight_at_sigterm_are_sent_at_the_next_start(Backend::Postgres).await;
}
