//! Health, readiness and metrics of an in-process server: readiness names each check and
//! follows the database away and back; `/metrics` counts exactly the traffic sent, read with
//! an independent parser of the format (the `prometheus_client` Python package's).

use crate::fixtures::usage;
use crate::helpers::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}/health/ready", app.root))
        .send()
        .await
        .expect("readiness answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// Polls readiness until it answers `status`; its last body.
async fn wait_for_readiness(app: &TestApp, status: StatusCode) -> Value {
    let started = Instant::now();
    loop {
        let (now, body) = readiness(app).await;
        if now == status {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "readiness still answers {now}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

crate::backend_tests! {
    async fn liveness_and_readiness_pass_naming_each_check(app) {
        let live = app.client.get(format!("{}/health/live", app.root)).send().await.unwrap();
        assert_eq!(live.status(), StatusCode::OK);
        let (status, body) = readiness(&app).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "pass");
        for check in ["database", "migrations", "writer", "deliveryWorker", "draining"] {
            assert_eq!(body["checks"][check]["status"], "pass", "{check}: {body}");
        }
    }
}

/// PostgreSQL refusing connections: readiness fails on the database, and passes again once
/// connections are allowed.
#[tokio::test]
async fn postgres_readiness_follows_the_database_away_and_back() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    wait_for_readiness(&app, StatusCode::OK).await;
    app.refuse_database_connections(true).await;
    let body = wait_for_readiness(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["database"]["status"], "fail", "{body}");
    assert!(body["checks"]["database"]["message"].is_string(), "{body}");
    assert_eq!(body["checks"]["draining"]["status"], "pass", "{body}");
    app.refuse_database_connections(false).await;
    let body = wait_for_readiness(&app, StatusCode::OK).await;
    assert_eq!(body["checks"]["database"]["status"], "pass", "{body}");
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    name: String,
    labels: BTreeMap<String, String>,
}

fn python() -> String {
    std::env::var("TMF635_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Python `prometheus_client` package's OpenMetrics parser, reading `text`: every sample
/// with its value. None (after saying why) when the package is missing and CI did not
/// require it.
fn parse_metrics(text: &str) -> Option<BTreeMap<Key, f64>> {
    use std::io::Write;
    const SCRIPT: &str = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        print(json.dumps([[s.name, s.labels, s.value] \
        for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))\n";
    let spawned = std::process::Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let required = std::env::var("TMF635_TEST_REQUIRE_PROMETHEUS_PARSER").is_ok_and(|v| v == "1");
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if !required => {
            eprintln!("SKIPPED: no {} to parse the metrics: {e}", python());
            return None;
        }
        Err(e) => panic!("{} is required: {e}", python()),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("the metrics are handed over");
    let output = child.wait_with_output().expect("the parser runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("No module named") && !required {
        eprintln!("SKIPPED: the prometheus_client Python package is not installed");
        return None;
    }
    assert!(
        output.status.success(),
        "the parser refused the metrics: {stderr}\n{text}"
    );
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&output.stdout).expect("the parser's JSON");
    Some(
        samples
            .into_iter()
            .map(|(name, labels, value)| (Key { name, labels }, value))
            .collect(),
    )
}

async fn scrape(app: &TestApp) -> Option<BTreeMap<Key, f64>> {
    let response = app
        .client
        .get(format!("{}/metrics", app.root))
        .send()
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_metrics(&response.text().await.unwrap())
}

fn sample(samples: &BTreeMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = Key {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    samples.get(&key).copied().unwrap_or(0.0)
}

mod metrics {
    use super::*;

    crate::backend_tests_with! {
        // No delivery: the events stay waiting in the outbox, where the gauge must find them.
        |config| config.delivery_enabled = false;
        async fn the_counters_move_by_exactly_the_traffic_sent(app) {
            let Some(before) = scrape(&app).await else { return };
            for usage_type in ["VOICE", "DATA", "SMS"] {
                app.create("/usage", &usage(usage_type, "received")).await;
            }
            let missing = app.get("/usage/no-such-usage").await;
            assert_eq!(missing.status(), StatusCode::NOT_FOUND);
            let list = app.get("/usage?usageType=VOICE").await;
            assert_eq!(list.status(), StatusCode::OK);
            let Some(after) = scrape(&app).await else { return };
            let traffic = [("createUsage", "2xx", 3.0), ("retrieveUsage", "4xx", 1.0), ("listUsage", "2xx", 1.0)];
            for (operation, class, count) in traffic {
                let labels = [("operation", operation), ("status_class", class)];
                for name in ["tmf635_http_requests_total", "tmf635_http_request_duration_seconds_count"] {
                    let moved = sample(&after, name, &labels) - sample(&before, name, &labels);
                    assert_eq!(moved, count, "{name} {labels:?}");
                }
                let inf = [("operation", operation), ("status_class", class), ("le", "+Inf")];
                let name = "tmf635_http_request_duration_seconds_bucket";
                assert_eq!(sample(&after, name, &inf) - sample(&before, name, &inf), count);
            }
            assert_eq!(sample(&after, "tmf635_outbox_events_waiting", &[]), 3.0);
            assert_eq!(sample(&after, "tmf635_deliveries", &[("status", "dead")]), 0.0);
            assert!(sample(&after, "tmf635_db_pool_connections", &[]) >= 1.0);
            if app.backend == Backend::Sqlite {
                let batches = sample(&after, "tmf635_writer_batch_size_count", &[]);
                assert!(batches >= 1.0, "the writer's batches are counted");
            }
        }
    }
}
