//! The TMF630 query benchmark (issue #3): loads N usages (20 parties, 50 products, 7 statuses,
//! 30 days of usageDate) into a fresh database, starts the real server on it, and measures over
//! loopback HTTP the p50/p99 latency of
//!   (a) a page of 100 with a date range + relatedParty.id filter, sorted by -usageDate, counted;
//!   (b) retrieve by id;
//!   (c) a deep page at offset N/2.
//!
//! `cargo bench --bench query` runs 10k and 1M rows on SQLite and (when reachable) PostgreSQL.
//! `BENCH_SIZES=10000,100000` and `BENCH_BACKENDS=sqlite` narrow it.

use chrono::{Duration, TimeZone, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, TransactionTrait};
use serde_json::json;
use std::time::Instant;
use tmf635::app::App;
use tmf635::store::{array_index, Table};
use tmf635::Config;

const PARTIES: usize = 20;
const PRODUCTS: usize = 50;
const STATUSES: [&str; 7] = [
    "received", "rejected", "recycled", "guided", "rated", "rerated", "billed",
];
const TYPES: [&str; 3] = ["VOICE", "DATA", "SMS"];
const DAYS: i64 = 30;

fn start_of_period() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// A deterministic pseudo-random stream, so every run loads the same data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn usage_row(i: usize, rng: &mut Lcg) -> entity::usage::ActiveModel {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", i, rng.next());
    let date = start_of_period() + Duration::seconds((rng.next() % (DAYS as u64 * 86_400)) as i64);
    let customer = rng.below(PARTIES);
    let product = rng.below(PRODUCTS);
    let status = STATUSES[rng.below(STATUSES.len())];
    let usage_type = TYPES[rng.below(TYPES.len())];
    let document = json!({
        "id": id,
        "href": format!("http://bench/tmf-api/usageManagement/v4/usage/{id}"),
        "description": format!("{usage_type} usage {i}"),
        "usageDate": date.to_rfc3339(),
        "usageType": usage_type,
        "status": status,
        "usageSpecification": {"id": format!("spec-{usage_type}"), "name": usage_type, "@referredType": "UsageSpecification"},
        "usageCharacteristic": [
            {"name": "duration", "valueType": "integer", "value": rng.below(3600)},
            {"name": "destination", "valueType": "string", "value": format!("+3361234{:04}", rng.below(10_000))}
        ],
        "relatedParty": [
            {"id": format!("party-{customer}"), "role": "customer", "@referredType": "Individual"},
            {"id": format!("party-{}", (customer + 1) % PARTIES), "role": "user", "@referredType": "Individual"}
        ],
        "ratedProductUsage": [{
            "productRef": {"id": format!("product-{product}"), "@referredType": "Product"},
            "taxRate": 0.2, "isBilled": status == "billed",
            "taxIncludedRatingAmount": {"unit": "EUR", "value": (rng.below(10_000) as f64) / 100.0}
        }],
        "@type": "Usage"
    });
    entity::usage::ActiveModel {
        id: Set(id),
        revision: Set(1),
        created_at: Set(date),
        usage_date: Set(Some(date)),
        usage_type: Set(Some(usage_type.into())),
        status: Set(Some(status.into())),
        description: Set(None),
        usage_specification_id: Set(Some(format!("spec-{usage_type}"))),
        at_type: Set(Some("Usage".into())),
        document: Set(document),
    }
}

async fn load(store: &tmf635::store::Store, rows: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    let mut ids = Vec::with_capacity(rows);
    let started = Instant::now();
    for chunk_start in (0..rows).step_by(5_000) {
        let txn = store.db().begin().await.expect("a transaction");
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
        .db()
        .execute_unprepared(maintenance)
        .await
        .expect("analyze");
    eprintln!(
        "  loaded {rows} usages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ids
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

async fn postgres_database(name: &str) -> Option<String> {
    let admin = std::env::var("TMF635_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = sea_orm::Database::connect(&admin).await.ok()?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok()?;
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .ok()?;
    let (prefix, _) = admin.rsplit_once('/')?;
    Some(format!("{prefix}/{name}"))
}

async fn run(backend: &str, rows: usize) -> Option<[(f64, f64); 3]> {
    let url = match backend {
        "postgres" => postgres_database(&format!("tmf635_bench_{rows}")).await?,
        _ => {
            let path = std::env::temp_dir().join(format!("tmf635-bench-{rows}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    eprintln!("{backend}, {rows} rows:");
    let mut config = Config::with_database(&url);
    config.listen = "127.0.0.1:0".into();
    config.delivery_enabled = false;
    config.log = "warn".into();
    let app = App::build(&config).await.expect("the server starts");
    let ids = load(app.store(), rows).await;
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}/tmf-api/usageManagement/v4");
    let client = reqwest::Client::new();
    let mut rng = Lcg(7);
    let a = measure("(a)", 200, |_| {
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
    Some([a, b, c])
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut table = vec![
        "| backend | rows | (a) filter+sort page p50 / p99 ms | (b) retrieve p50 / p99 ms | (c) offset N/2 p50 / p99 ms |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    for backend in backends.split(',').map(str::trim) {
        for &rows in &sizes {
            match run(backend, rows).await {
                Some([a, b, c]) => table.push(format!(
                    "| {backend} | {rows} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
                    a.0, a.1, b.0, b.1, c.0, c.1
                )),
                None => eprintln!("SKIPPED: {backend} not reachable"),
            }
        }
    }
    println!("{}", table.join("\n"));
}
