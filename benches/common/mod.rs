//! What the benchmarks share (`mod common;` in each): a deterministic RNG, the realistic usage
//! document (20 parties, 50 products, 7 statuses, 3 usage types, 30 days of usageDate; ~1 KB),
//! fresh databases, percentiles and settings from the environment. Not a bench by itself.

// Each bench uses only part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::ConnectionTrait;
use serde_json::{json, Map, Value};

pub const PARTIES: usize = 20;
pub const PRODUCTS: usize = 50;
pub const STATUSES: [&str; 7] = [
    "received", "rejected", "recycled", "guided", "rated", "rerated", "billed",
];
pub const TYPES: [&str; 3] = ["VOICE", "DATA", "SMS"];
pub const DAYS: i64 = 30;

pub fn start_of_period() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// A deterministic pseudo-random stream, so every run loads the same data.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A usage as a client would create it (no `id`, no `href`), with the values the stored row
/// also keeps in columns.
pub struct UsageBody {
    pub document: Map<String, Value>,
    pub date: DateTime<Utc>,
    pub status: &'static str,
    pub usage_type: &'static str,
}

/// The `i`-th usage drawn from `rng`: a customer and a user among 20 parties, one rated product
/// among 50, one of 7 statuses and 3 usage types, a usageDate within 30 days.
pub fn usage_body(i: usize, rng: &mut Lcg) -> UsageBody {
    let date = start_of_period() + Duration::seconds((rng.next() % (DAYS as u64 * 86_400)) as i64);
    usage_body_at(i, rng, date)
}

/// `usage_body` with the usageDate `date` (the other values drawn from `rng` as there).
pub fn usage_body_at(i: usize, rng: &mut Lcg, date: DateTime<Utc>) -> UsageBody {
    let customer = rng.below(PARTIES);
    let product = rng.below(PRODUCTS);
    let status = STATUSES[rng.below(STATUSES.len())];
    let usage_type = TYPES[rng.below(TYPES.len())];
    let document = json!({
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
    let Value::Object(document) = document else {
        unreachable!("json! of an object literal is an object")
    };
    UsageBody {
        document,
        date,
        status,
        usage_type,
    }
}

/// A usage to create (~1 KB): the benches' realistic document with the rating details and
/// network characteristics a mediation system adds.
pub fn post_body(i: usize, rng: &mut Lcg) -> String {
    let date = start_of_period() + Duration::seconds((rng.next() % (DAYS as u64 * 86_400)) as i64);
    post_body_at(i, rng, date)
}

/// `post_body` with the usageDate `date`.
pub fn post_body_at(i: usize, rng: &mut Lcg, date: DateTime<Utc>) -> String {
    let mut usage = usage_body_at(i, rng, date).document;
    let date = usage["usageDate"].clone();
    usage.insert(
        "@schemaLocation".into(),
        json!("https://usage.example.com/schemas/Usage.schema.json"),
    );
    if let Some(Value::Array(characteristics)) = usage.get_mut("usageCharacteristic") {
        let cell = format!("208-01-{:04}-{:05}", rng.below(10_000), rng.below(100_000));
        characteristics.push(json!({"name": "cellId", "valueType": "string", "value": cell}));
        characteristics.push(json!({"name": "roaming", "valueType": "boolean", "value": false}));
    }
    if let Some(rated) = usage["ratedProductUsage"][0].as_object_mut() {
        let amount = rated["taxIncludedRatingAmount"]["value"]
            .as_f64()
            .unwrap_or(0.0);
        rated.insert("ratingDate".into(), date);
        rated.insert("ratingAmountType".into(), json!("total"));
        rated.insert("offerTariffType".into(), json!("normal"));
        rated.insert("usageRatingTag".into(), json!("usage"));
        rated.insert("isTaxExempt".into(), json!(false));
        rated.insert(
            "taxExcludedRatingAmount".into(),
            json!({"unit": "EUR", "value": (amount / 1.2 * 100.0).round() / 100.0}),
        );
    }
    Value::Object(usage).to_string()
}

/// The value at quantile `p` (0..=1) of ascending `sorted`; 0 when there is none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The backends listed in `BENCH_BACKENDS` (default `sqlite,postgres`).
pub fn backends() -> Vec<String> {
    std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite,postgres".into())
        .split(',')
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .collect()
}

/// The URL of an empty SQLite file `NAME.db` in the temp directory (any old one, with its WAL
/// and shared-memory files, is deleted).
pub fn sqlite_database(name: &str) -> String {
    let path = sqlite_path(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Where the SQLite database `name` lives: `NAME.db` in the temp directory.
pub fn sqlite_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{name}.db"))
}

/// The admin URL of the PostgreSQL server (`TMF635_TEST_POSTGRES_URL`).
fn postgres_admin_url() -> String {
    std::env::var("TMF635_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `name` on that server (whether it exists or not).
pub fn postgres_url(name: &str) -> Option<String> {
    let admin = postgres_admin_url();
    let (prefix, _) = admin.rsplit_once('/')?;
    Some(format!("{prefix}/{name}"))
}

/// A freshly (re)created PostgreSQL database `name` on the server of `TMF635_TEST_POSTGRES_URL`
/// (default `postgres://postgres@127.0.0.1:5432/postgres`); `None` when it is unreachable.
pub async fn postgres_database(name: &str) -> Option<String> {
    let admin = postgres_admin_url();
    let mut options = sea_orm::ConnectOptions::new(admin.clone());
    // Unreachable is known in seconds, not after the default 30 s of retries.
    options
        .connect_timeout(std::time::Duration::from_secs(3))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.ok()?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok()?;
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .ok()?;
    let _ = db.close().await;
    postgres_url(name)
}

/// A fresh database named `name` for `backend` (`sqlite` or `postgres`); `None` when PostgreSQL
/// is unreachable or the backend unknown.
pub async fn fresh_database(backend: &str, name: &str) -> Option<String> {
    match backend {
        "sqlite" => Some(sqlite_database(name)),
        "postgres" => postgres_database(name).await,
        other => {
            eprintln!("unknown backend {other:?} (sqlite or postgres)");
            None
        }
    }
}
