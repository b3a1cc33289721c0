//! The bulk benchmark: the release `tmf635` binary as its own process, per backend on fresh
//! databases, with a hub subscription registered so that every created usage writes its
//! `UsageCreateEvent` (delivery is off in every phase: what is timed is the write of the
//! events with the usages, not their delivery to a listener):
//!   1. the single-POST rate: `POST /usage` (~1 KB) over C keep-alive connections for S s
//!      after a 1 s warm-up, on a fresh database; then the same over one connection, one
//!      POST at a time, as a loader that waits for each answer sends them;
//!   2. an import of N such usages (`POST /importJob`, NDJSON, streamed from a generator) on
//!      another fresh database, timed from the first byte sent to the job's `succeeded`;
//!   3. all N exported through the export job's download URL, then through `GET /usage`
//!      with `Accept: application/x-ndjson`, each read to the end with its lines counted,
//!      the server's VmRSS sampled every 20 ms (peak against idle before it);
//!   4. single POSTs over C connections again, on the database the import filled: loading
//!      the same N usages by single POSTs would end at about this rate;
//!   5. the import of phase 2 again on a fresh database, its rows in usageDate order (as a
//!      mediation system writes them) instead of in no order.
//!
//! The report (stdout) is a markdown table for BENCHMARKS.md: import usages/s against the
//! single-POST rates over C connections and over one, and on the filled database (goal
//! >= 10x), export usages/s (goal >= 50,000) and peak RSS.
//!
//! `cargo bench --bench bulk`; `BENCH_BULK_USAGES=1000000`, `BENCH_BACKENDS=sqlite,postgres`
//! (PostgreSQL is skipped when unreachable), `BENCH_SECONDS=10`, `BENCH_CONNECTIONS=32`.

#![forbid(unsafe_code)]

mod common;
mod process;

use common::{env_number, Lcg};
use futures_util::StreamExt;
use process::{Server, TMF635};
use reqwest::Client;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NDJSON: &str = "application/x-ndjson";
/// Rows per chunk of the generated import body.
const CHUNK_ROWS: usize = 1000;

/// The server's settings for every phase: delivery off, imports up to 16 GiB.
const SETTINGS: [(&str, &str); 3] = [
    ("TMF635_DELIVERY_ENABLED", "false"),
    ("TMF635_MAX_IMPORT_BYTES", "17179869184"),
    ("TMF635_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8"),
];

fn client(connections: usize) -> Option<Client> {
    Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(3600))
        .build()
        .ok()
}

/// `http://127.0.0.1:PORT/tmf-api/usageManagement/v4` of a server.
fn api(server: &Server) -> String {
    server.base.trim_end_matches("/usage").to_string()
}

/// A fresh database, the server on it, a hub subscription registered.
async fn started(backend: &str, name: &str, client: &Client) -> Option<Server> {
    let Some(url) = common::fresh_database(backend, name).await else {
        eprintln!("SKIPPED: {backend} not reachable");
        return None;
    };
    let (server, _) = Server::start_with(TMF635, &url, &SETTINGS).await?;
    let hub = client
        .post(format!("{}/hub", api(&server)))
        .json(&json!({"callback": "http://127.0.0.1:9/listener"}))
        .send()
        .await
        .ok()?;
    if !hub.status().is_success() {
        eprintln!("  the hub subscription was refused: {}", hub.status());
        return None;
    }
    Some(server)
}

/// Usages/s of `POST /usage` on a fresh database.
async fn post_rate(backend: &str, connections: usize, seconds: u64) -> Option<f64> {
    let client = client(connections)?;
    let server = started(backend, "tmf635_bulk_post", &client).await?;
    post_rate_on(&server, &client, connections, seconds).await
}

/// Usages/s of `POST /usage` to `server` over `connections` connections for `seconds` after a
/// warm-up.
async fn post_rate_on(
    server: &Server,
    client: &Client,
    connections: usize,
    seconds: u64,
) -> Option<f64> {
    let mut rng = Lcg(42);
    let bodies: Arc<Vec<String>> =
        Arc::new((0..1000).map(|i| common::post_body(i, &mut rng)).collect());
    let measure_from = Instant::now() + Duration::from_secs(1);
    let deadline = measure_from + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|task| {
            let (client, bodies, url) = (client.clone(), bodies.clone(), server.base.clone());
            tokio::spawn(async move {
                let (mut created, mut rng) = (0usize, Lcg(1000 + task as u64));
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let body = bodies[rng.below(bodies.len())].clone();
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match answer {
                        Ok(r) => r.status().as_u16() == 201 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok && sent >= measure_from {
                        created += 1;
                    }
                }
                created
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        created += task.await.unwrap_or(0);
    }
    Some(created as f64 / seconds as f64)
}

/// The order of an import's rows.
#[derive(Clone, Copy)]
enum Order {
    /// usageDates drawn at random over the period.
    Random,
    /// usageDates ascending over the period, line after line.
    ByDate,
}

/// The import body: `usages` NDJSON lines of ~1 KB, generated a chunk at a time.
fn import_body(usages: usize, order: Order) -> reqwest::Body {
    let chunks = usages.div_ceil(CHUNK_ROWS);
    let period = common::DAYS * 86_400;
    let stream = futures_util::stream::iter(0..chunks).map(move |chunk| {
        let mut rng = Lcg(7 + chunk as u64);
        let mut text = String::with_capacity(CHUNK_ROWS * 1100);
        for i in chunk * CHUNK_ROWS..((chunk + 1) * CHUNK_ROWS).min(usages) {
            let body = match order {
                Order::Random => common::post_body(i, &mut rng),
                Order::ByDate => {
                    let second = (i as i64).saturating_mul(period) / usages as i64;
                    let date = common::start_of_period() + chrono::Duration::seconds(second);
                    common::post_body_at(i, &mut rng, date)
                }
            };
            text.push_str(&body);
            text.push('\n');
        }
        Ok::<_, std::io::Error>(text)
    });
    reqwest::Body::wrap_stream(stream)
}

/// Imports `usages` usages; answers the seconds from the first byte to `succeeded`, and the
/// rows the job created.
async fn import(
    server: &Server,
    client: &Client,
    usages: usize,
    order: Order,
) -> Option<(f64, i64)> {
    let started = Instant::now();
    let answer = client
        .post(format!("{}/importJob", api(server)))
        .header("content-type", NDJSON)
        .body(import_body(usages, order))
        .send()
        .await
        .ok()?;
    let job: Value = answer.json().await.ok()?;
    let href = format!("{}/importJob/{}", api(server), job["id"].as_str()?);
    loop {
        let job: Value = client.get(&href).send().await.ok()?.json().await.ok()?;
        match job["status"].as_str() {
            Some("succeeded") => {
                return Some((
                    started.elapsed().as_secs_f64(),
                    job["rowsCreated"].as_i64()?,
                ))
            }
            Some("failed") => {
                eprintln!("  the import failed: {job}");
                return None;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One download read to the end: lines, bytes, seconds, and the server's peak VmRSS (MiB)
/// while it ran.
struct Download {
    lines: usize,
    bytes: usize,
    seconds: f64,
    peak_rss: f64,
}

async fn download(server: &Server, client: &Client, url: &str) -> Option<Download> {
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (done.clone(), server.pid());
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(process::rss_of(pid).unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let response = client.get(url).header("accept", NDJSON).send().await.ok()?;
    if !response.status().is_success() {
        eprintln!("  GET {url}: {}", response.status());
        return None;
    }
    let (mut lines, mut bytes) = (0, 0);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let peak_rss = sampler.await.ok()?;
    Some(Download {
        lines,
        bytes,
        seconds,
        peak_rss,
    })
}

/// The table's rows for one backend.
async fn measure(backend: &str, usages: usize, connections: usize, seconds: u64) -> Vec<String> {
    let mut rows = Vec::new();
    let Some(post) = post_rate(backend, connections, seconds).await else {
        return rows;
    };
    eprintln!("{backend}: POST /usage {post:.0}/s");
    let Some(one_at_a_time) = post_rate(backend, 1, seconds).await else {
        return rows;
    };
    eprintln!("{backend}: POST /usage one at a time {one_at_a_time:.0}/s");
    let Some(client) = client(1) else {
        return rows;
    };
    let Some(server) = started(backend, "tmf635_bulk_import", &client).await else {
        return rows;
    };
    let Some((import_seconds, created)) = import(&server, &client, usages, Order::Random).await
    else {
        return rows;
    };
    let rate = created as f64 / import_seconds;
    eprintln!("{backend}: imported {created} in {import_seconds:.1} s, {rate:.0}/s");
    rows.push(format!(
        "| {backend} | import (POST /importJob, NDJSON) | {created} | {import_seconds:.1} | {rate:.0} | POST /usage over {connections} connections: {post:.0}/s; import/POST = {:.1}x | - |",
        rate / post.max(1.0)
    ));
    rows.push(format!(
        "| {backend} | POST /usage one at a time (1 connection) | - | {seconds} | {one_at_a_time:.0} | import/POST = {:.1}x | - |",
        rate / one_at_a_time.max(1.0)
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.rss_mib().unwrap_or(0.0);
    let export = client
        .post(format!("{}/exportJob", api(&server)))
        .json(&json!({"contentType": NDJSON}))
        .send()
        .await;
    let job: Option<Value> = match export {
        Ok(r) => r.json().await.ok(),
        Err(_) => None,
    };
    let job_url = job
        .as_ref()
        .and_then(|j| j["url"].as_str().map(str::to_string));
    let list_url = server.base.clone();
    for (label, url) in [
        ("export job download", job_url),
        ("GET /usage as NDJSON", Some(list_url)),
    ] {
        let Some(url) = url else { continue };
        let Some(d) = download(&server, &client, &url).await else {
            continue;
        };
        let rate = d.lines as f64 / d.seconds;
        eprintln!(
            "{backend}: {label}: {} lines, {:.0} MiB in {:.1} s, {rate:.0}/s, peak RSS {:.1} MiB (idle {idle:.1})",
            d.lines,
            d.bytes as f64 / 1048576.0,
            d.seconds,
            d.peak_rss
        );
        rows.push(format!(
            "| {backend} | {label} | {} | {:.1} | {rate:.0} | {:.0} MiB downloaded | {idle:.1} -> {:.1} |",
            d.lines,
            d.seconds,
            d.bytes as f64 / 1048576.0,
            d.peak_rss
        ));
    }
    // The single POSTs again, on the database the import filled: what they would run at near
    // the end of loading the same usages by single POSTs.
    let Some(posts) = self::client(connections) else {
        return rows;
    };
    if let Some(post) = post_rate_on(&server, &posts, connections, seconds).await {
        eprintln!("{backend}: POST /usage on the imported database {post:.0}/s");
        rows.push(format!(
            "| {backend} | POST /usage on the imported database | - | {seconds} | {post:.0} | import/POST = {:.1}x | - |",
            rate / post.max(1.0)
        ));
    }
    drop(server);
    let Some(server) = started(backend, "tmf635_bulk_import_by_date", &client).await else {
        return rows;
    };
    if let Some((seconds, created)) = import(&server, &client, usages, Order::ByDate).await {
        let rate = created as f64 / seconds;
        eprintln!(
            "{backend}: imported {created} in usageDate order in {seconds:.1} s, {rate:.0}/s"
        );
        rows.push(format!(
            "| {backend} | import, rows in usageDate order | {created} | {seconds:.1} | {rate:.0} | import/POST = {:.1}x over {connections} connections, {:.1}x one at a time | - |",
            rate / post.max(1.0),
            rate / one_at_a_time.max(1.0)
        ));
    }
    rows
}

#[tokio::main]
async fn main() {
    let usages = env_number("BENCH_BULK_USAGES", 1_000_000).max(1);
    let connections = env_number("BENCH_CONNECTIONS", 32).max(1);
    let seconds = env_number("BENCH_SECONDS", 10).max(1) as u64;
    let mut table = vec![
        "| backend | operation | usages | s | usages/s | against | server RSS MiB: idle -> peak |"
            .to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        table.extend(measure(&backend, usages, connections, seconds).await);
    }
    println!(
        "{usages} usages of ~1 KB; a hub subscription registered (events written, delivery off); single POST over {connections} connections for {seconds} s.\n"
    );
    println!("{}", table.join("\n"));
}
