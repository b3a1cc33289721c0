//! The TMF630 query benchmark: loads N usages (20 parties, 50 products, 7 statuses,
//! 30 days of usageDate) into a fresh database, starts the real server on it, and measures over
//! loopback HTTP the p50/p99 latency of
//!   (a) a page of 100 with a one-day range + relatedParty.id filter, sorted by -usageDate,
//!       counted (at 10k rows the day holds ~33 of the party's usages, at 1M ~3,300);
//!   (a') the same with a range that holds ~300 of the party's usages at any size (a full page
//!       of 100 of ~300 counted), so that only the table's size differs;
//!   (b) retrieve by id;
//!   (c) a deep page at offset N/2.
//!
//! `cargo bench --bench query` runs 10k and 1M rows on SQLite and (when reachable) PostgreSQL.
//! `BENCH_SIZES=10000,100000` and `BENCH_BACKENDS=sqlite` narrow it. `BENCH_REUSE=1` measures
//! again on the databases a previous run loaded (same names, same row count), skipping the load
//! (1M rows take minutes); the server migrates them first, as it would in production.

#![forbid(unsafe_code)]

mod common;

use chrono::Duration;
use common::{start_of_period, Lcg, DAYS, PARTIES};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{json, Map};
use std::time::Instant;
use tmf635::app::App;
use tmf635::store::{array_index, Table};
use tmf635::Config;

fn usage_row(i: usize, rng: &mut Lcg) -> entity::usage::ActiveModel {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", i, rng.next());
    let usage = common::usage_body(i, rng);
    let mut document = Map::new();
    document.insert("id".into(), json!(id));
    document.insert(
        "href".into(),
        json!(format!(
            "http://bench/tmf-api/usageManagement/v4/usage/{id}"
        )),
    );
    document.extend(usage.document);
    entity::usage::ActiveModel {
        tenant: Set(String::new()),
        id: Set(id),
        revision: Set(1),
        created_at: Set(usage.date),
        usage_date: Set(Some(usage.date)),
        usage_type: Set(Some(usage.usage_type.into())),
        status: Set(Some(usage.status.into())),
        description: Set(None),
        usage_specification_id: Set(Some(format!("spec-{}", usage.usage_type))),
        at_type: Set(Some("Usage".into())),
        document: Set(document.into()),
    }
}

async fn load(store: &tmf635::store::Store, rows: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    let mut ids = Vec::with_capacity(rows);
    let started = Instant::now();
    for chunk_start in (0..rows).step_by(5_000) {
        let txn = store
            .pool()
            .run(|db| db.begin())
            .await
            .expect("a transaction");
        for batch_start in (chunk_start..(chunk_start + 5_000).min(rows)).step_by(500) {
            let batch: Vec<_> = (batch_start..(batch_start + 500).min(rows))
                .map(|i| usage_row(i, &mut rng))
                .collect();
            ids.extend(batch.iter().map(|r| r.id.clone().unwrap()));
            // The array-value index rows the store writes with each usage.
            let index_rows: Vec<_> = batch
                .iter()
                .flat_map(|r| {
                    let document = r.document.clone().unwrap();
                    let document = document.as_object().cloned().unwrap_or_default();
                    array_index::rows(
                        <entity::usage::Entity as Table>::INDEXED_ARRAY_PATHS,
                        "",
                        &r.id.clone().unwrap(),
                        &document,
                    )
                })
                .collect();
            entity::usage::Entity::insert_many(batch)
                .exec_without_returning(&txn)
                .await
                .expect("rows insert");
            entity::usage_array_value::Entity::insert_many(index_rows)
                .exec_without_returning(&txn)
                .await
                .expect("index rows insert");
        }
        txn.commit().await.expect("commit");
    }
    // Fresh statistics and (PostgreSQL) a visibility map, as autovacuum keeps them on a
    // long-running database.
    let maintenance = match store.backend() {
        sea_orm::DatabaseBackend::Postgres => "VACUUM ANALYZE",
        _ => "ANALYZE",
    };
    store
        .pool()
        .run(|db| db.execute_unprepared(maintenance))
        .await
        .expect("analyze");
    eprintln!(
        "  loaded {rows} usages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ids
}

async fn measure(
    label: &str,
    n: usize,
    mut request: impl FnMut(usize) -> reqwest::RequestBuilder,
) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let started = Instant::now();
        let response = request(i).send().await.expect("the server answers");
        let status = response.status();
        let _ = response.bytes().await.expect("a body");
        assert!(status.is_success(), "{label}: {status}");
        if i >= 5 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (
        common::percentile(&times, 0.5),
        common::percentile(&times, 0.99),
    )
}

/// Reads the database's files once, so that both sizes are measured with the data in the OS
/// page cache, as on a server that has been running: without it a reused 1M-row database
/// measured 10-15 ms for (a) where a warm one measures 4-5 ms, the difference being disk reads
/// of pages the kernel had dropped since the load. PostgreSQL's are read by `pg_prewarm` (in
/// PostgreSQL's contrib, shipped with it); where it is missing the run says so and goes on.
async fn warm_up(backend: &str, name: &str, store: &tmf635::store::Store) {
    let started = Instant::now();
    let warmed = if backend == "sqlite" {
        std::fs::read(common::sqlite_path(name))
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        let sql = "CREATE EXTENSION IF NOT EXISTS pg_prewarm; \
                   SELECT pg_prewarm(c.oid, 'read') FROM pg_class c \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 't')";
        store
            .pool()
            .run(|db| db.execute_unprepared(sql))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    match warmed {
        Ok(()) => eprintln!(
            "  warmed the OS page cache in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("  NOT warmed ({e}): cold pages will show in the figures"),
    }
}

/// The ids of the usages of the database at `url` when it holds exactly `rows` of them.
async fn loaded_ids(backend: &str, url: &str, rows: usize) -> Option<Vec<String>> {
    if backend == "sqlite" {
        let path = url.trim_start_matches("sqlite://").split('?').next()?;
        if !std::path::Path::new(path).exists() {
            return None;
        }
    }
    let mut options = sea_orm::ConnectOptions::new(url);
    options
        .connect_timeout(std::time::Duration::from_secs(3))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.ok()?;
    let ids: Vec<String> = entity::usage::Entity::find()
        .select_only()
        .column(entity::usage::Column::Id)
        .order_by_asc(entity::usage::Column::Id)
        .into_tuple()
        .all(&db)
        .await
        .ok()?;
    let _ = db.close().await;
    (ids.len() == rows).then_some(ids)
}

/// The URL of the database `name` of `backend` as a previous run left it (not checked).
fn previous_database(backend: &str, name: &str) -> Option<String> {
    match backend {
        "sqlite" => Some(format!(
            "sqlite://{}?mode=rw",
            common::sqlite_path(name).display()
        )),
        "postgres" => common::postgres_url(name),
        _ => None,
    }
}

async fn run(backend: &str, rows: usize) -> Option<[(f64, f64); 4]> {
    let name = format!("tmf635_bench_{rows}");
    let reuse = std::env::var("BENCH_REUSE").is_ok_and(|v| v == "1");
    let previous = match previous_database(backend, &name) {
        Some(url) if reuse => loaded_ids(backend, &url, rows).await.map(|ids| (url, ids)),
        _ => None,
    };
    let url = match &previous {
        Some((url, _)) => url.clone(),
        None => common::fresh_database(backend, &name).await?,
    };
    eprintln!("{backend}, {rows} rows:");
    let mut config = Config::with_database(&url);
    config.listen = "127.0.0.1:0".into();
    config.delivery_enabled = false;
    config.log = "warn".into();
    let app = App::build(&config).await.expect("the server starts");
    let ids = match previous {
        Some((_, ids)) => {
            eprintln!("  reusing the {rows} usages loaded before");
            ids
        }
        None => load(app.store(), rows).await,
    };
    warm_up(backend, &name, app.store()).await;
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}/tmf-api/usageManagement/v4");
    let client = reqwest::Client::new();
    let mut rng = Lcg(7);
    let a = measure("(a)", 500, |_| {
        let day = rng.below(DAYS as usize - 1) as i64;
        let from = start_of_period() + Duration::days(day);
        let to = from + Duration::days(1);
        let party = rng.below(PARTIES);
        client.get(format!(
            "{base}/usage?usageDate.gte={}&usageDate.lt={}&relatedParty.id=party-{party}&sort=-usageDate&limit=100",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        ))
    })
    .await;
    // (a) at a fixed answer size: the range holds ~300 of the party's usages whatever the
    // table's size (9 days at 10k rows, 2.2 hours at 1M), so both sizes return a full page of
    // 100 and count ~300, and only the table's size differs.
    let window = matching_window(rows, 300);
    let mut rng = Lcg(8);
    let a_fixed = measure("(a')", 500, |_| {
        let room = (DAYS * 86_400 - window.num_seconds()).max(1) as usize;
        let from = start_of_period() + Duration::seconds(rng.below(room) as i64);
        let party = rng.below(PARTIES);
        client.get(format!(
            "{base}/usage?usageDate.gte={}&usageDate.lt={}&relatedParty.id=party-{party}&sort=-usageDate&limit=100",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            (from + window).format("%Y-%m-%dT%H:%M:%SZ")
        ))
    })
    .await;
    let mut rng = Lcg(9);
    let b = measure("(b)", 1000, |_| {
        client.get(format!("{base}/usage/{}", ids[rng.below(ids.len())]))
    })
    .await;
    let c = measure("(c)", 20, |_| {
        client.get(format!("{base}/usage?offset={}&limit=100", rows / 2))
    })
    .await;
    let _ = stop.send(());
    let _ = server.await;
    Some([a, a_fixed, b, c])
}

/// The usageDate range in which one party has about `matches` usages when the table holds
/// `rows`: each usage names 2 of the PARTIES parties, spread evenly over DAYS days.
fn matching_window(rows: usize, matches: usize) -> Duration {
    let per_party = (rows * 2 / PARTIES).max(1);
    let seconds = DAYS * 86_400 * matches as i64 / per_party as i64;
    Duration::seconds(seconds.clamp(60, DAYS * 86_400))
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let mut table = vec![
        "| backend | rows | (a) 1 day p50 / p99 ms | (a') ~300 matches p50 / p99 ms | (b) retrieve p50 / p99 ms | (c) offset N/2 p50 / p99 ms |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    for backend in common::backends() {
        for &rows in &sizes {
            match run(&backend, rows).await {
                Some([a, a_fixed, b, c]) => table.push(format!(
                    "| {backend} | {rows} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
                    a.0, a.1, a_fixed.0, a_fixed.1, b.0, b.1, c.0, c.1
                )),
                None => eprintln!("SKIPPED: {backend} not reachable"),
            }
        }
    }
    println!("{}", table.join("\n"));
}
