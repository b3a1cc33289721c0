//! The event delivery benchmark: a real listener on loopback subscribes, N usages
//! are created through the API by C concurrent clients, and the report gives the delivery
//! throughput and the lag from each event's `eventTime` (stamped just before its commit) to its
//! arrival at the listener (p50, p99, max).
//!
//! `cargo bench --bench events` (SQLite, and PostgreSQL when reachable);
//! `BENCH_EVENTS=2000 BENCH_CLIENTS=8 BENCH_BACKENDS=sqlite` to change it.

#![forbid(unsafe_code)]

mod common;

use chrono::{DateTime, Utc};
use common::{env_number, percentile};
use poem::web::{Data, Json};
use poem::{handler, listener::TcpListener, post, EndpointExt, Route, Server};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tmf635::app::App;
use tmf635::Config;

type Received = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;

#[handler]
fn listen(Json(event): Json<Value>, Data(received): Data<&Received>) -> &'static str {
    let id = event["eventId"].as_str().unwrap_or_default().to_string();
    if let Ok(mut all) = received.lock() {
        all.push((id, Utc::now()));
    }
    "ok"
}

async fn run(backend: &str, events: usize, clients: usize) -> Option<String> {
    let url = common::fresh_database(backend, "tmf635_bench_events").await?;
    let received: Received = Arc::default();
    let acceptor = poem::listener::Listener::into_acceptor(TcpListener::bind("127.0.0.1:0"))
        .await
        .ok()?;
    let listener_addr = poem::listener::Acceptor::local_addr(&acceptor)
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())?;
    let routes = Route::new()
        .at("/hook/listener/:event", post(listen))
        .data(received.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));

    let mut config = Config::with_database(&url);
    config.listen = "127.0.0.1:0".into();
    config.log = "warn".into();
    config.delivery_poll_ms = 50;
    // The listener is on loopback, which callbacks may not reach by default.
    config.callback_allow_cidrs = "127.0.0.0/8".parse().expect("a CIDR");
    let app = App::build(&config).await.expect("the server starts");
    let base = format!("http://{}/tmf-api/usageManagement/v4", app.local_addr()?);
    tokio::spawn(app.run(std::future::pending()));
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/hub"))
        .json(&json!({"callback": format!("http://{listener_addr}/hook")}))
        .send()
        .await
        .ok()?;

    let started = Instant::now();
    let mut writers = Vec::new();
    for c in 0..clients {
        let (client, base) = (client.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for i in (c..events).step_by(clients) {
                let body = json!({"usageType": "VOICE", "status": "received", "description": format!("bench {i}"),
                    "relatedParty": [{"id": format!("party-{}", i % 20), "role": "customer", "@referredType": "Individual"}]});
                let response = client.post(format!("{base}/usage")).json(&body).send().await;
                if let Ok(r) = response {
                    let _ = r.bytes().await;
                }
                times.push(Utc::now());
            }
            times
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    let written = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.lock().map(|r| r.len()).unwrap_or(0) < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered_in = started.elapsed();
    // eventTime of each event, from the outbox of the server's own listener-side view: read
    // back through the hub's delivery list would cost requests; the payload is in the outbox.
    let store_url = url.clone();
    let db = sea_orm::Database::connect(&store_url).await.ok()?;
    let rows = db
        .query_all(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id, event_time FROM event_outbox".to_string(),
        ))
        .await
        .ok()?;
    let mut event_time = std::collections::HashMap::new();
    for row in rows {
        let id: String = row.try_get("", "id").ok()?;
        let at: DateTime<Utc> = row.try_get("", "event_time").ok()?;
        event_time.insert(id, at);
    }
    let received = received.lock().ok()?.clone();
    let mut lags: Vec<f64> = received
        .iter()
        .filter_map(|(id, at)| {
            event_time
                .get(id)
                .map(|t| (*at - *t).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        })
        .collect();
    lags.sort_by(|a, b| a.total_cmp(b));
    if lags.is_empty() {
        return Some(format!(
            "| {backend} | {events} | {clients} | nothing delivered | | |"
        ));
    }
    Some(format!(
        "| {backend} | {events} | {clients} | {}/{events} in {:.2} s ({:.0}/s; writes took {:.2} s) | {:.1} / {:.1} / {:.1} |",
        received.len(),
        delivered_in.as_secs_f64(),
        received.len() as f64 / delivered_in.as_secs_f64(),
        written.as_secs_f64(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1],
    ))
}

#[tokio::main]
async fn main() {
    let events = env_number("BENCH_EVENTS", 2000);
    let clients = env_number("BENCH_CLIENTS", 8);
    println!("| backend | events | clients | delivered (throughput) | lag eventTime -> callback p50 / p99 / max ms |");
    println!("|---|---|---|---|---|");
    for backend in common::backends() {
        match run(&backend, events, clients).await {
            Some(line) => println!("{line}"),
            None => eprintln!("SKIPPED: {backend} not reachable"),
        }
    }
}
