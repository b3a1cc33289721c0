//! The storage benchmark: what the database holds per stored usage after a sustained POST
//! load, before retention and once retention has run. Starts the `tmf635` binary on a fresh
//! SQLite file, creates N usages (the load bench's ~1 KB documents) over 32 connections, waits
//! until every event is dispatched, and reads the bytes the database uses (pages in use, free
//! pages not counted) and each table's rows. Then it restarts the server with a retention age
//! of one second and reads them again once retention has removed what it may.
//!
//! `cargo bench --bench storage`; `BENCH_USAGES=20000`, `BENCH_CONNECTIONS=32`. SQLite only:
//! PostgreSQL's sizes count dead tuples until a vacuum, which says more about autovacuum than
//! about what the server keeps.

#![forbid(unsafe_code)]

mod common;
mod process;

use common::{env_number, Lcg};
use process::{Server, TMF635};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tables whose rows the report counts.
const TABLES: [&str; 5] = [
    "usage",
    "usage_array_value",
    "event_outbox",
    "event_pending",
    "delivery",
];

/// What the database holds at one moment.
struct Footprint {
    bytes: i64,
    rows: Vec<(&'static str, i64)>,
}

async fn footprint(url: &str) -> Footprint {
    let db = Database::connect(url).await.expect("the database opens");
    let number = |sql: String| {
        let db = &db;
        async move {
            let row = db
                .query_one(Statement::from_string(DatabaseBackend::Sqlite, sql))
                .await
                .expect("the query runs")
                .expect("a row");
            row.try_get_by_index::<i64>(0).expect("a number")
        }
    };
    let pages = number("PRAGMA page_count".into()).await;
    let free = number("PRAGMA freelist_count".into()).await;
    let size = number("PRAGMA page_size".into()).await;
    let mut rows = Vec::new();
    for table in TABLES {
        rows.push((
            table,
            number(format!("SELECT COUNT(*) FROM \"{table}\"")).await,
        ));
    }
    let _ = db.close().await;
    Footprint {
        bytes: (pages - free) * size,
        rows,
    }
}

/// Waits until `done` holds of the footprint (checked every 200 ms), at most `limit`.
async fn wait_for(url: &str, limit: Duration, done: impl Fn(&Footprint) -> bool) -> Footprint {
    let started = Instant::now();
    loop {
        let now = footprint(url).await;
        if done(&now) || started.elapsed() > limit {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rows_of(footprint: &Footprint, table: &str) -> i64 {
    footprint
        .rows
        .iter()
        .find(|(name, _)| *name == table)
        .map_or(0, |(_, rows)| *rows)
}

/// Creates `usages` usages over `connections` connections; answers the documents' mean size.
async fn create(base: &str, usages: usize, connections: usize) -> usize {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, base, next, bytes) = (
                client.clone(),
                base.to_string(),
                next.clone(),
                bytes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= usages {
                        break;
                    }
                    let body = common::usage_body(i, &mut Lcg(i as u64 + 1)).document;
                    let text = serde_json::to_string(&body).expect("JSON");
                    bytes.fetch_add(text.len(), Ordering::Relaxed);
                    let answer = client
                        .post(&base)
                        .header("content-type", "application/json")
                        .body(text)
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(answer.status().as_u16(), 201, "POST {i}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a load task");
    }
    bytes.load(Ordering::Relaxed) / usages.max(1)
}

#[tokio::main]
async fn main() {
    let usages = env_number("BENCH_USAGES", 20_000).max(1);
    let connections = env_number("BENCH_CONNECTIONS", 32).max(1);
    let url = common::sqlite_database("tmf635_bench_storage");

    let (server, _) = Server::start(TMF635, &url).await.expect("tmf635 starts");
    let started = Instant::now();
    let document = create(&server.base, usages, connections).await;
    let seconds = started.elapsed().as_secs_f64();
    let before = wait_for(&url, Duration::from_secs(120), |f| {
        rows_of(f, "event_pending") == 0
    })
    .await;
    drop(server);

    let retention = [
        ("TMF635_RETAIN_DELIVERED_SECS", "1"),
        ("TMF635_RETENTION_INTERVAL_MS", "200"),
    ];
    let (server, _) = Server::start_with(TMF635, &url, &retention)
        .await
        .expect("tmf635 starts again");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = wait_for(&url, Duration::from_secs(300), |f| {
        rows_of(f, "event_outbox") == 0
    })
    .await;
    drop(server);

    let per_usage = |f: &Footprint| f.bytes as f64 / usages as f64;
    println!("## Storage (SQLite)\n");
    println!(
        "{usages} usages of {document} bytes on average, created over {connections} connections in {seconds:.1} s.\n"
    );
    println!(
        "| | bytes in use | per usage | rows: {} |",
        TABLES.join(", ")
    );
    println!("|---|---|---|---|");
    for (name, f) in [("before retention", &before), ("after retention", &after)] {
        let rows: Vec<String> = f.rows.iter().map(|(_, n)| n.to_string()).collect();
        println!(
            "| {name} | {} | {:.0} | {} |",
            f.bytes,
            per_usage(f),
            rows.join(", ")
        );
    }
}
