//! A large result streamed out in flat memory: the real binary as its own process on a
//! database of 200,000 usages of ~3 KB (copied in SQL from one the server stored, so loading
//! takes seconds), the export job's download and `GET /usage` as NDJSON each read to the end
//! and their lines counted, while the server's VmRSS is sampled from /proc.
//!
//! The bound: idle RSS + 64 MiB. A stream holds one page (1000 rows, ~3 MB of JSON) in the
//! database driver, once more as rendered text, and in the socket's buffers, ~10-20 MiB in
//! all; the rest is headroom for the allocator and SQLite's page cache (2 MiB a connection).
//! Each download is ~600 MiB, nine times the bound, so a server that gathered the result,
//! or even a tenth of it, before sending would pass it.

use crate::fixtures::usage;
use crate::helpers::{Backend, ScratchDatabase};
use crate::server_process::ServerProcess;
use futures_util::StreamExt;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USAGES: usize = 200_000;
const HEADROOM_MIB: f64 = 64.0;
const NDJSON: &str = "application/x-ndjson";

/// VmRSS of process `pid`, MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A usage of ~3 KB: the fixture with 40 characteristics.
fn large_usage() -> serde_json::Value {
    let mut body = usage("DATA", "rated");
    body["usageCharacteristic"] = (0..40)
        .map(|i| json!({"name": format!("counter{i:02}"), "valueType": "string", "value": format!("{i:04}-{}", "x".repeat(40))}))
        .collect();
    body
}

/// Copies usage `template` to `USAGES - 1` more rows (ids `mem-0000001`...), every column as
/// the server stored it but the id.
async fn fill(url: &str, template: &str) {
    let db = sea_orm::Database::connect(url)
        .await
        .expect("the database opens");
    let backend = db.get_database_backend();
    let columns_sql = match backend {
        DatabaseBackend::Postgres => "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage' AND table_schema = current_schema()",
        _ => "SELECT name FROM pragma_table_info('usage')",
    };
    let columns: Vec<String> = db
        .query_all(Statement::from_string(backend, columns_sql))
        .await
        .expect("the usage table's columns")
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .filter(|c| c != "id")
        .collect();
    let (series, id, document) = match backend {
        DatabaseBackend::Postgres => (
            format!("generate_series(1, {}) AS n(i)", USAGES - 1),
            "'mem-' || lpad(n.i::text, 7, '0')",
            "jsonb_set(document, '{id}', to_jsonb('mem-' || lpad(n.i::text, 7, '0')))",
        ),
        _ => (
            format!(
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {}) SELECT i FROM s) AS n",
                USAGES - 1
            ),
            "printf('mem-%07d', n.i)",
            "json_set(document, '$.id', printf('mem-%07d', n.i))",
        ),
    };
    let list = columns.join(", ");
    let values = columns
        .iter()
        .map(|c| {
            if c == "document" {
                document
            } else {
                c.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO usage (id, {list}) SELECT {id}, {values} FROM usage, {series} WHERE usage.id = '{template}'"
    );
    let inserted = db
        .execute(Statement::from_string(backend, sql))
        .await
        .expect("the usages are copied");
    assert_eq!(inserted.rows_affected(), (USAGES - 1) as u64);
    if backend == DatabaseBackend::Postgres {
        // As autovacuum would soon: the planner's row counts still say one usage.
        db.execute_unprepared("ANALYZE usage")
            .await
            .expect("the table is analysed");
    }
    db.close().await.ok();
}

/// Downloads `url` to the end while sampling the server's RSS: (lines, bytes, peak MiB,
/// seconds).
async fn download(server: &ServerProcess, pid: u32, url: &str) -> (usize, usize, f64, f64) {
    let started = std::time::Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let response = server
        .client
        .get(url)
        .header("accept", NDJSON)
        .send()
        .await
        .expect("the download starts");
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    let (mut lines, mut bytes) = (0, 0);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the download goes on to its end");
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await.expect("the sampler ends");
    let seconds = started.elapsed().as_secs_f64();
    (lines, bytes, peak.max(rss_mib(pid)), seconds)
}

async fn a_large_stream_keeps_memory_flat(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let server = ServerProcess::start(&database.url, false).await;
    let template = server.create("/usage", &large_usage()).await;
    fill(&database.url, template["id"].as_str().unwrap_or_default()).await;
    let pid = server.pid();
    // A first page read, so the connections and caches idle memory counts are there.
    let (status, _) = server.get("/usage?limit=10").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_mib(pid);
    let (status, job) = server.post("/exportJob", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let export_url = job["url"].as_str().unwrap_or_default().to_string();
    let list_url = format!("{}/usage", server.base);
    for (what, url) in [("export", export_url), ("GET /usage", list_url)] {
        let (lines, bytes, peak, seconds) = download(&server, pid, &url).await;
        let mib = bytes as f64 / 1048576.0;
        println!("{what}: {lines} lines, {mib:.0} MiB in {seconds:.1} s; RSS idle {idle:.1} MiB, peak {peak:.1} MiB");
        assert_eq!(lines, USAGES, "{what}: every usage, once");
        assert!(
            mib > 8.0 * HEADROOM_MIB,
            "{what}: {mib:.0} MiB is many times the bound"
        );
        assert!(
            peak < idle + HEADROOM_MIB,
            "{what}: RSS rose from {idle:.1} to {peak:.1} MiB streaming {mib:.0} MiB"
        );
    }
}

mod sqlite {
    #[tokio::test]
    async fn a_large_stream_keeps_memory_flat() {
        super::a_large_stream_keeps_memory_flat(crate::helpers::Backend::Sqlite).await
    }
}

mod postgres {
    #[tokio::test]
    async fn a_large_stream_keeps_memory_flat() {
        super::a_large_stream_keeps_memory_flat(crate::helpers::Backend::Postgres).await
    }
}
