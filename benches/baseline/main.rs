//! `tmf635-baseline`: the load benchmark's yardstick (`cargo bench --bench load` starts it). A
//! minimal poem + sqlx server doing the four usage operations the bench drives, with no
//! validation, no OpenAPI spec, no events: one table `usage (id, document, created_at)`, every
//! write committed alone on a pool of 16 connections (as `tmf635` by default).
//!
//! - `POST /tmf-api/usageManagement/v4/usage`: any JSON object, given a uuid `id`; 201.
//! - `GET .../usage/{id}`: the stored document; 404 if none.
//! - `GET .../usage?relatedParty.id=P&limit=N`: the newest N documents with a party P.
//! - `PATCH .../usage/{id}` with `{"status": S}`: sets the status; 200 with the document.
//!
//! Run by hand: `cargo run --release --bin tmf635-baseline -- --listen 127.0.0.1:8081
//! --database-url 'sqlite:///tmp/baseline.db?mode=rwc'` (or `postgres://...`; env
//! `TMF635_LISTEN`, `DATABASE_URL`). SQLite is opened like `tmf635` opens it: WAL,
//! `synchronous=FULL`, 30 s busy timeout.

#![forbid(unsafe_code)]

use clap::Parser;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{get, handler, listener::TcpListener, Body, EndpointExt, Response, Route, Server};
use serde::Deserialize;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "tmf635-baseline",
    about = "Minimal usage server, the load bench's baseline"
)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "TMF635_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Pool size (tmf635's default).
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

const SQLITE_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS usage (id TEXT PRIMARY KEY, document TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS usage_created ON usage (created_at)",
];
const POSTGRES_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS usage (id TEXT PRIMARY KEY, document JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
    "CREATE INDEX IF NOT EXISTS usage_created ON usage (created_at)",
];

impl Db {
    async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .connect_with(options)
                .await?;
            for statement in SQLITE_SCHEMA {
                sqlx::query(statement).execute(&pool).await?;
            }
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .connect(url)
                .await?;
            for statement in POSTGRES_SCHEMA {
                sqlx::query(statement).execute(&pool).await?;
            }
            Ok(Db::Postgres(pool))
        }
    }

    async fn insert(&self, id: &str, document: &str) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO usage (id, document, created_at) \
                     VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                )
                .bind(id)
                .bind(document)
                .execute(pool)
                .await?;
            }
            Db::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO usage (id, document, created_at) VALUES ($1, $2::jsonb, now())",
                )
                .bind(id)
                .bind(document)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::query_scalar("SELECT document FROM usage WHERE id = ?")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT document::text FROM usage WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    async fn list(&self, party: &str, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT document FROM usage WHERE EXISTS (SELECT 1 FROM \
                     json_each(usage.document, '$.relatedParty') WHERE json_extract(value, '$.id') = ?) \
                     ORDER BY created_at DESC LIMIT ?",
                )
                .bind(party)
                .bind(limit)
                .fetch_all(pool)
                .await
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT document::text FROM usage WHERE document @> jsonb_build_object(\
                     'relatedParty', jsonb_build_array(jsonb_build_object('id', $1::text))) \
                     ORDER BY created_at DESC LIMIT $2",
                )
                .bind(party)
                .bind(limit)
                .fetch_all(pool)
                .await
            }
        }
    }

    async fn set_status(&self, id: &str, status: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::query_scalar(
                    "UPDATE usage SET document = json_set(document, '$.status', ?) \
                     WHERE id = ? RETURNING document",
                )
                .bind(status)
                .bind(id)
                .fetch_optional(pool)
                .await
            }
            Db::Postgres(pool) => sqlx::query_scalar(
                "UPDATE usage SET document = jsonb_set(document, '{status}', to_jsonb($1::text)) \
                     WHERE id = $2 RETURNING document::text",
            )
            .bind(status)
            .bind(id)
            .fetch_optional(pool)
            .await,
        }
    }
}

fn json(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(Body::from_string(body))
}

fn failed(status: StatusCode, reason: impl std::fmt::Display) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from_string(reason.to_string()))
}

#[handler]
async fn create(body: Body, Data(db): Data<&Db>) -> Response {
    let bytes = match body.into_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return failed(StatusCode::BAD_REQUEST, e),
    };
    let mut document = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(document)) => document,
        Ok(_) => return failed(StatusCode::BAD_REQUEST, "not a JSON object"),
        Err(e) => return failed(StatusCode::BAD_REQUEST, e),
    };
    let id = uuid::Uuid::new_v4().to_string();
    document.insert("id".into(), Value::String(id.clone()));
    let text = Value::Object(document).to_string();
    match db.insert(&id, &text).await {
        Ok(()) => json(StatusCode::CREATED, text),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[handler]
async fn retrieve(Path(id): Path<String>, Data(db): Data<&Db>) -> Response {
    match db.get(&id).await {
        Ok(Some(document)) => json(StatusCode::OK, document),
        Ok(None) => failed(StatusCode::NOT_FOUND, "no such usage"),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "relatedParty.id")]
    party: String,
    limit: Option<i64>,
}

#[handler]
async fn list(Query(query): Query<ListQuery>, Data(db): Data<&Db>) -> Response {
    let limit = query.limit.unwrap_or(100).clamp(0, 1000);
    match db.list(&query.party, limit).await {
        Ok(documents) => json(StatusCode::OK, format!("[{}]", documents.join(","))),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct StatusPatch {
    status: String,
}

#[handler]
async fn patch(Path(id): Path<String>, body: Body, Data(db): Data<&Db>) -> Response {
    let bytes = match body.into_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return failed(StatusCode::BAD_REQUEST, e),
    };
    let change = match serde_json::from_slice::<StatusPatch>(&bytes) {
        Ok(change) => change,
        Err(e) => return failed(StatusCode::BAD_REQUEST, e),
    };
    match db.set_status(&id, &change.status).await {
        Ok(Some(document)) => json(StatusCode::OK, document),
        Ok(None) => failed(StatusCode::NOT_FOUND, "no such usage"),
        Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let db = match Db::connect(&args.database_url, args.max_connections).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot open {}: {e}", args.database_url);
            std::process::exit(1);
        }
    };
    let routes = Route::new()
        .at("/tmf-api/usageManagement/v4/usage", get(list).post(create))
        .at(
            "/tmf-api/usageManagement/v4/usage/:id",
            get(retrieve).patch(patch),
        )
        .data(db);
    if let Err(e) = Server::new(TcpListener::bind(args.listen))
        .run(routes)
        .await
    {
        eprintln!("server failed: {e}");
        std::process::exit(1);
    }
}
