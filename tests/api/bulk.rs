//! Bulk import and export (`/importJob`, `/exportJob`): rows validated as `POST /usage`
//! validates a body, bad rows rejected alone with their line and attribute, good ones stored
//! with their events, re-imports skipped, exports that import back into the same data.

use crate::backend_tests;
use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, json_body, Api, TestApp};
use entity::event_outbox;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const NDJSON: &str = "application/x-ndjson";

fn with_id(id: &str, usage_type: &str) -> Value {
    let mut row = usage(usage_type, "rated");
    row["id"] = json!(id);
    row
}

/// Three good rows (one with its own id), a row breaking the schema, a row that is not JSON,
/// and a blank line (no row).
pub fn mixed_ndjson() -> String {
    let mut bad = usage("VOICE", "rated");
    bad["usageCharacteristic"] = json!([{"value": 1}]);
    [
        with_id("imported-1", "VOICE").to_string(),
        usage("DATA", "rated").to_string(),
        bad.to_string(),
        String::new(),
        "{not json".to_string(),
        usage("SMS", "billed").to_string(),
    ]
    .join("\n")
}

async fn send_import(app: &Api, content_type: &str, body: String) -> reqwest::Response {
    app.client
        .post(app.url("/importJob"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the import is sent")
}

pub async fn start_import(app: &Api, content_type: &str, body: String) -> Value {
    let response = send_import(app, content_type, body).await;
    assert_eq!(response.status().as_u16(), 201, "an import answers 201");
    json_body(response).await
}

/// Follows a job until it ends; answers it.
pub async fn finished(app: &Api, job: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = json_body(
            app.get(&format!(
                "/importJob/{}",
                job["id"].as_str().unwrap_or_default()
            ))
            .await,
        )
        .await;
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        assert!(Instant::now() < deadline, "the job ends in time: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id servers derived for the row `row` at `line` that carries none: a UUIDv8 whose first
/// 48 bits are the line and whose other bits are a SHA-256 of the line and the row's text.
fn former_derived_id(line: u64, row: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(line.to_be_bytes());
    hash.update(row.to_string());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&line.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

pub async fn import(app: &Api, content_type: &str, body: String) -> Value {
    let job = start_import(app, content_type, body).await;
    finished(app, &job).await
}

fn counts(job: &Value) -> [i64; 4] {
    ["rowsRead", "rowsCreated", "rowsSkipped", "rowsRejected"]
        .map(|k| job[k].as_i64().unwrap_or(-1))
}

async fn create_events(app: &TestApp) -> u64 {
    let db = sea_orm::Database::connect(app.database_url())
        .await
        .expect("the database opens");
    let n = event_outbox::Entity::find()
        .filter(event_outbox::Column::EventType.eq("UsageCreateEvent"))
        .count(&db)
        .await
        .expect("events are counted");
    db.close().await.ok();
    n
}

/// Every usage of the server, ordered by id, without `href` (it names the server).
pub async fn all_usages(app: &TestApp) -> Vec<Value> {
    let mut usages = app.list("/usage?limit=1000").await.items;
    for u in &mut usages {
        if let Value::Object(map) = u {
            map.remove("href");
        }
    }
    usages.sort_by_key(|u| u["id"].as_str().unwrap_or_default().to_string());
    usages
}

pub async fn export(app: &Api, query: &str, content_type: &str) -> String {
    let response = app
        .post(
            "/exportJob",
            &json!({"query": query, "contentType": content_type}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let job = json_body(response).await;
    assert_eq!(job["status"], "succeeded");
    let download = app
        .client
        .get(job["url"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("download");
    assert_eq!(download.status().as_u16(), 200);
    let content = download.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(content.starts_with(content_type), "{content}");
    download.text().await.expect("the export's text")
}

backend_tests! {
    async fn an_import_stores_good_rows_and_rejects_bad_ones_alone(app) {
        let job = start_import(&app, NDJSON, mixed_ndjson()).await;
        assert!(job["status"] == "notStarted" || job["status"] == "running", "{job}");
        let job = finished(&app, &job).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(counts(&job), [5, 3, 0, 2], "read, created, skipped, rejected: {job}");
        let errors = job["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 2, "{job}");
        assert_eq!(errors[0]["line"], 3);
        assert_eq!(errors[0]["attribute"], "usageCharacteristic[0].name");
        assert_eq!(errors[1]["line"], 5);
        assert!(errors[1]["message"].as_str().unwrap_or_default().contains("not valid JSON"), "{job}");
        // The good rows are stored, the row with an id under it; the bad ones are not.
        assert_eq!(app.total("/usage").await, 3);
        let kept = app.read("/usage/imported-1").await;
        assert_eq!(kept["usageType"], "VOICE");
        assert_eq!(kept["href"], app.href("usage", "imported-1"));
        assert_eq!(app.total("/usage?usageType=SMS&status=billed").await, 1);
        assert_eq!(create_events(&app).await, 3, "one UsageCreateEvent per created usage");
        // The job is listed.
        let jobs = json_body(app.get("/importJob").await).await;
        assert_eq!(jobs.as_array().map(Vec::len), Some(1));
        assert_eq!(jobs[0]["id"], job["id"]);
    }

    async fn importing_the_same_rows_again_creates_nothing(app) {
        // 30 rows with their own ids, then 10 equal rows without one (each line its own usage).
        let rows: Vec<String> = (0..30)
            .map(|i| with_id(&format!("again-{i:02}"), "DATA").to_string())
            .chain((0..10).map(|_| usage("VOICE", "rated").to_string()))
            .collect();
        let first = import(&app, NDJSON, rows.join("\n")).await;
        assert_eq!(counts(&first), [40, 40, 0, 0], "{first}");
        let before = all_usages(&app).await;
        let second = import(&app, NDJSON, rows.join("\n")).await;
        assert_eq!(second["status"], "succeeded");
        assert_eq!(counts(&second), [40, 0, 40, 0], "{second}");
        assert_eq!(all_usages(&app).await, before, "nothing changed");
        assert_eq!(create_events(&app).await, 40, "no event for a skipped row");
    }

    async fn a_row_the_database_refuses_is_rejected_alone(app) {
        // A unique index the schema does not have: the third row passes every check of the
        // server and is refused by the database only. Its batch goes in row by row.
        let db = sea_orm::Database::connect(app.database_url()).await.expect("the database opens");
        db.execute_unprepared(r#"CREATE UNIQUE INDEX test_one_description ON "usage" (description)"#)
            .await
            .expect("the index is made");
        db.close().await.ok();
        let described = |description: &str| {
            let mut row = usage("VOICE", "rated");
            row["description"] = json!(description);
            row.to_string()
        };
        let rows = ["one", "twice", "twice", "three"].map(described).join("\n");
        let job = import(&app, NDJSON, rows).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(counts(&job), [4, 3, 0, 1], "read, created, skipped, rejected: {job}");
        assert_eq!(job["errors"][0]["line"], 3, "{job}");
        assert_eq!(job["errors"][0]["message"], "the database refused the row", "{job}");
        assert_eq!(app.total("/usage").await, 3);
        assert_eq!(create_events(&app).await, 3, "one UsageCreateEvent per created usage");
        // The writer goes on.
        let created = app.post("/usage", &usage("SMS", "rated")).await;
        assert_eq!(created.status().as_u16(), 201);
    }

    async fn rows_stored_under_their_former_derived_ids_are_not_stored_again(app) {
        // Servers derived the id of a row without one as a UUIDv8 of its line and a SHA-256 of
        // its line and text: a file imported by one and sent again creates nothing.
        let rows = [usage("DATA", "rated"), usage("SMS", "billed")];
        let stored_before: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut row = row.clone();
                row["id"] = json!(former_derived_id(i as u64 + 1, &rows[i]));
                row.to_string()
            })
            .collect();
        let first = import(&app, NDJSON, stored_before[0].clone()).await;
        assert_eq!(counts(&first), [1, 1, 0, 0], "{first}");
        let again = import(&app, NDJSON, rows.map(|r| r.to_string()).join("\n")).await;
        assert_eq!(counts(&again), [2, 1, 1, 0], "the first row is stored already: {again}");
        assert_eq!(app.total("/usage").await, 2);
    }

    async fn json_array_and_csv_imports_are_checked_row_by_row(app) {
        let array = json!([with_id("array-1", "VOICE"), {"usageDate": "yesterday"}, usage("DATA", "rated")]);
        let job = import(&app, "application/json", serde_json::to_string_pretty(&array).unwrap_or_default()).await;
        assert_eq!(counts(&job), [3, 2, 0, 1], "{job}");
        assert_eq!(job["errors"][0]["attribute"], "usageDate", "{job}");
        assert!(job["errors"][0]["line"].as_i64() > Some(1), "{job}");
        let csv = "id,usageType,status,usageDate,relatedParty\n\
                   csv-1,VOICE,rated,2024-05-01T10:00:00Z,\"[{\"\"id\"\":\"\"cust-9\"\",\"\"role\"\":\"\"customer\"\",\"\"@referredType\"\":\"\"Individual\"\"}]\"\n\
                   csv-2,DATA,rated,2024-05-01T10:00:00Z,not json\n\
                   csv-3,SMS,,,\n";
        let job = import(&app, "text/csv", csv.to_string()).await;
        assert_eq!(counts(&job), [3, 2, 0, 1], "{job}");
        assert_eq!(job["errors"][0]["line"], 3, "{job}");
        assert_eq!(job["errors"][0]["attribute"], "relatedParty", "{job}");
        let stored = app.read("/usage/csv-1").await;
        assert_eq!(stored["relatedParty"][0]["id"], "cust-9");
        assert_eq!(app.total("/usage?relatedParty.id=cust-9").await, 1, "indexed like a POST");
        assert!(app.read("/usage/csv-3").await.get("status").is_none(), "an empty cell leaves it out");
    }

    async fn an_export_imports_back_into_an_empty_database_as_the_same_data(app) {
        let rows: Vec<String> = (0..25)
            .map(|i| usage(if i % 2 == 0 { "VOICE" } else { "DATA" }, "rated").to_string())
            .collect();
        let job = import(&app, NDJSON, rows.join("\n")).await;
        assert_eq!(counts(&job), [25, 25, 0, 0]);
        let ndjson = export(&app, "", NDJSON).await;
        assert_eq!(ndjson.lines().count(), 25);
        let voice = export(&app, "usageType=VOICE&fields=usageType", NDJSON).await;
        assert_eq!(voice.lines().count(), 13);
        let first: Value = serde_json::from_str(voice.lines().next().unwrap_or_default()).unwrap_or_default();
        assert_eq!(first.as_object().map(|o| o.len()), Some(3), "id, href, usageType: {first}");
        let csv = export(&app, "usageType=DATA", "text/csv").await;
        assert_eq!(csv.lines().count(), 13, "a header and 12 rows");

        let Some(empty) = TestApp::spawn(app.backend).await else { return };
        let job = import(&empty, NDJSON, ndjson).await;
        assert_eq!(counts(&job), [25, 25, 0, 0], "{job}");
        assert_eq!(all_usages(&empty).await, all_usages(&app).await);
        let Some(from_csv) = TestApp::spawn(app.backend).await else { return };
        let job = import(&from_csv, "text/csv", csv).await;
        assert_eq!(counts(&job), [12, 12, 0, 0], "{job}");
        let data = all_usages(&app).await.into_iter().filter(|u| u["usageType"] == "DATA").collect::<Vec<_>>();
        assert_eq!(all_usages(&from_csv).await, data);
    }

    async fn bad_bulk_requests_answer_tmf_errors_and_store_nothing(app) {
        let response = send_import(&app, "text/plain", "x".into()).await;
        assert_tmf_error(response, 415).await;
        let response = app.post("/exportJob", &json!({"query": "sort=usageDate"})).await;
        assert!(assert_tmf_error(response, 400).await.contains("sort"));
        let response = app.post("/exportJob", &json!({"query": "color=red"})).await;
        assert_tmf_error(response, 400).await;
        let response = app.post("/exportJob", &json!({"contentType": "application/xml"})).await;
        assert_tmf_error(response, 400).await;
        assert_tmf_error(app.get("/importJob/nope").await, 404).await;
        assert_tmf_error(app.get("/exportJob/nope").await, 404).await;
        assert_tmf_error(app.get("/exportJob/nope/download").await, 404).await;
        assert_eq!(json_body(app.get("/importJob").await).await, json!([]));
        assert_eq!(json_body(app.get("/exportJob").await).await, json!([]));
        // A body that is not an array fails the job; nothing is stored.
        let job = import(&app, "application/json", "{\"a\": 1}".into()).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(counts(&job), [0, 0, 0, 0]);
        assert_eq!(app.total("/usage").await, 0);
    }
}

mod limits {
    use super::*;
    use crate::backend_tests_with;

    backend_tests_with! {
        |config: &mut tmf635::Config| {
            config.max_import_bytes = 4096;
            config.max_body_bytes = 1024;
            config.import_batch_rows = 7;
        };

        async fn an_import_over_its_bound_is_refused_and_a_long_row_rejected(app) {
            let rows: Vec<String> = (0..40).map(|_| usage("VOICE", "rated").to_string()).collect();
            let response = send_import(&app, NDJSON, rows.join("\n")).await;
            assert_tmf_error(response, 413).await;
            assert_eq!(json_body(app.get("/importJob").await).await, json!([]));
            let mut long = usage("DATA", "rated");
            long["description"] = json!("x".repeat(2000));
            let body = [usage("VOICE", "rated").to_string(), long.to_string(), usage("SMS", "rated").to_string()].join("\n");
            let job = import(&app, NDJSON, body).await;
            assert_eq!(counts(&job), [3, 2, 0, 1], "{job}");
            assert!(job["errors"][0]["message"].as_str().unwrap_or_default().contains("larger than 1024 bytes"), "{job}");
            assert_eq!(job["errors"][0]["line"], 2);
        }
    }
}

mod ordered {
    use super::*;
    use crate::backend_tests_with;

    backend_tests_with! {
        |config: &mut tmf635::Config| {
            config.import_order_rows = 4;
            config.import_batch_rows = 2;
        };

        async fn rows_are_stored_in_usage_date_order_a_window_at_a_time(app) {
            // Ten rows, dates in no order, the seventh rejected: each window of four lines
            // (1-4, 5-8, 9-10) is stored in date order, which the events' order shows.
            let days = [5, 1, 4, 2, 9, 3, 8, 6, 7, 0];
            let rows: Vec<String> = days
                .iter()
                .enumerate()
                .map(|(i, day)| {
                    let mut row = usage("DATA", "rated");
                    row["usageDate"] = json!(format!("2026-11-{:02}T10:00:00Z", day + 1));
                    if i == 6 {
                        row["usageCharacteristic"] = json!([{"value": 1}]);
                    }
                    row.to_string()
                })
                .collect();
            let job = import(&app, NDJSON, rows.join("\n")).await;
            assert_eq!(counts(&job), [10, 9, 0, 1], "{job}");
            assert_eq!(job["errors"][0]["line"], 7, "{job}");
            let stored: Vec<u32> = created_usage_dates(&app)
                .await
                .iter()
                .map(|date| date[8..10].parse::<u32>().unwrap_or(0) - 1)
                .collect();
            assert_eq!(stored, vec![1, 2, 4, 5, 3, 6, 9, 0, 7], "{job}");
            // The ids derived for them ascend with their dates.
            let mut usages = all_usages(&app).await;
            let by_id: Vec<String> = usages.iter().map(|u| u["usageDate"].to_string()).collect();
            usages.sort_by_key(|u| u["usageDate"].as_str().unwrap_or_default().to_string());
            let by_date: Vec<String> = usages.iter().map(|u| u["usageDate"].to_string()).collect();
            assert_eq!(by_id, by_date);
        }

        async fn an_id_repeated_in_the_next_batch_is_skipped_not_refused(app) {
            // Batches of two, each sharing an id with the one before, which is still on its
            // way when the next is written (PostgreSQL): the repeat waits for it and is seen
            // as stored.
            let ids = ["a", "b", "b", "c", "c", "d", "d", "a", "e", "f"];
            let rows: Vec<String> = ids
                .iter()
                .map(|id| with_id(&format!("repeated-{id}"), "DATA").to_string())
                .collect();
            let job = import(&app, NDJSON, rows.join("\n")).await;
            assert_eq!(job["status"], "succeeded", "{job}");
            assert_eq!(counts(&job), [10, 6, 4, 0], "read, created, skipped, rejected: {job}");
            assert_eq!(job["errors"], json!([]), "{job}");
            assert_eq!(app.total("/usage").await, 6);
            assert_eq!(create_events(&app).await, 6, "one UsageCreateEvent per created usage");
        }
    }
}

/// The usageDates of the usages whose UsageCreateEvents were written, in the order written.
async fn created_usage_dates(app: &TestApp) -> Vec<String> {
    let db = sea_orm::Database::connect(app.database_url())
        .await
        .expect("the database opens");
    let events = event_outbox::Entity::find()
        .filter(event_outbox::Column::EventType.eq("UsageCreateEvent"))
        .order_by_asc(event_outbox::Column::Seq)
        .all(&db)
        .await
        .expect("events are read");
    db.close().await.ok();
    events
        .iter()
        .map(|e| {
            let payload: Value = serde_json::from_str(&e.payload).unwrap_or_default();
            payload["event"]["usage"]["usageDate"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// PostgreSQL: an import past 1,024 usages refreshes the planner's statistics of the tables it
/// fills (else the lookup of a batch's ids, planned for an empty table, reads the whole table
/// at every batch as it grows).
#[tokio::test]
async fn a_large_import_refreshes_postgres_planner_statistics() {
    use crate::helpers::Backend;
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let rows: Vec<String> = (0..1100)
        .map(|_| usage("DATA", "rated").to_string())
        .collect();
    let job = import(&app, NDJSON, rows.join("\n")).await;
    assert_eq!(counts(&job), [1100, 1100, 0, 0], "{job}");
    let db = sea_orm::Database::connect(app.database_url())
        .await
        .expect("the database opens");
    for (table, at_least) in [("usage", 1100.0), ("usage_array_value", 1100.0)] {
        // `reltuples` is what ANALYZE counted (-1 before any, autovacuum aside).
        let sql =
            format!("SELECT CAST(reltuples AS float8) FROM pg_class WHERE relname = '{table}'");
        let row = db
            .query_one(Statement::from_string(DatabaseBackend::Postgres, sql))
            .await
            .expect("pg_class is read")
            .expect("the table is there");
        let counted: f64 = row.try_get_by_index(0).expect("a count");
        assert!(counted >= at_least, "{table}: {counted}");
    }
    db.close().await.ok();
}
