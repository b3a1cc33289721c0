//! Bulk jobs across processes: an import cut by SIGKILL is resumed by the next process after
//! its last stored batch (every row stored once), or failed with its counts when its body is
//! gone; and the `tmf635 import` / `tmf635 export` commands, their summary and exit status.

use crate::bulk::{mixed_ndjson, NDJSON};
use crate::fixtures::usage;
use crate::helpers::{Backend, ScratchDatabase, TestApp};
use crate::server_process::ServerProcess;
use entity::{event_outbox, usage as usage_table};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROWS: usize = 20_000;

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tmf635-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

async fn start(database: &ScratchDatabase, spool: &Path) -> ServerProcess {
    let spool = spool.display().to_string();
    ServerProcess::start_with(
        &database.url,
        false,
        &[
            ("TMF635_IMPORT_SPOOL_DIR", spool.as_str()),
            ("TMF635_IMPORT_BATCH_ROWS", "50"),
            ("TMF635_IMPORT_STALE_MS", "1000"),
        ],
    )
    .await
}

/// Starts a large import and kills the process once some of it is stored; answers the job's
/// id and what it had stored by then.
async fn import_then_kill(server: &mut ServerProcess) -> (String, i64) {
    let body: Vec<String> = (0..ROWS)
        .map(|_| usage("VOICE", "rated").to_string())
        .collect();
    let response = server
        .client
        .post(format!("{}/importJob", server.base))
        .header("content-type", NDJSON)
        .body(body.join("\n"))
        .send()
        .await
        .expect("the import is sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let job: Value = response.json().await.expect("the job");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, job) = server.get(&format!("/importJob/{id}")).await;
        let created = job["rowsCreated"].as_i64().unwrap_or(0);
        if created > 0 {
            server.kill();
            return (id, created);
        }
        assert!(Instant::now() < deadline, "the import starts: {job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ended(server: &ServerProcess, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, job) = server.get(&format!("/importJob/{id}")).await;
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "the job ends: {job}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stored(database: &ScratchDatabase) -> (u64, u64) {
    let db = sea_orm::Database::connect(&database.url)
        .await
        .expect("the database opens");
    let usages = usage_table::Entity::find().count(&db).await.expect("count");
    let events = event_outbox::Entity::find()
        .count(&db)
        .await
        .expect("count");
    db.close().await.ok();
    (usages, events)
}

/// A database, a spool directory, and an import cut by SIGKILL in a process on them: its id
/// and the rows it had stored.
async fn a_cut_import(backend: Backend) -> Option<(ScratchDatabase, PathBuf, String, i64)> {
    let database = ScratchDatabase::create(backend).await?;
    let spool = scratch_dir("spool");
    let mut first = start(&database, &spool).await;
    let (id, before) = import_then_kill(&mut first).await;
    Some((database, spool, id, before))
}

async fn an_import_cut_by_sigkill_resumes_after_restart(backend: Backend) {
    let Some((database, spool, id, before)) = a_cut_import(backend).await else {
        return;
    };
    let second = start(&database, &spool).await;
    let job = ended(&second, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rowsRead"], ROWS, "{job}");
    assert_eq!(
        job["rowsCreated"], ROWS,
        "every row once, {before} before the kill: {job}"
    );
    assert_eq!(
        stored(&database).await,
        (ROWS as u64, ROWS as u64),
        "usages and events"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

async fn an_import_whose_body_is_gone_fails_with_its_counts(backend: Backend) {
    let Some((database, spool, id, _)) = a_cut_import(backend).await else {
        return;
    };
    std::fs::remove_dir_all(&spool).expect("the spooled body is removed");
    std::fs::create_dir_all(&spool).expect("an empty spool");
    let second = start(&database, &spool).await;
    let job = ended(&second, &id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["message"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped"),
        "{job}"
    );
    let created = job["rowsCreated"].as_u64().unwrap_or(0);
    assert!(created > 0 && created < ROWS as u64, "{job}");
    assert_eq!(job["rowsRead"], created, "{job}");
    assert_eq!(
        stored(&database).await,
        (created, created),
        "what the counts say, no more"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

async fn cli(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tmf635"))
        .args(args)
        .env_remove("TMF635_TOKEN")
        .output()
        .await
        .expect("the command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

async fn the_commands_import_and_export_with_a_summary_and_exit_status(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let dir = scratch_dir("cli");
    let mixed = dir.join("mixed.ndjson");
    std::fs::write(&mixed, mixed_ndjson()).expect("written");
    let (code, out) = cli(&["import", &mixed.display().to_string(), "--url", &app.root]).await;
    assert_eq!(code, 1, "rows were rejected: {out}");
    assert!(
        out.contains("5 rows read, 3 created, 0 skipped, 2 rejected"),
        "{out}"
    );
    assert!(
        out.contains("line 3 (usageCharacteristic[0].name)"),
        "{out}"
    );
    let good = dir.join("good.jsonl");
    // Rows of their own: an id-less row equal to one on the same line of the first file
    // would get its id and be skipped.
    let rows: Vec<String> = (0..10)
        .map(|i| {
            let mut row = usage("DATA", "rated");
            row["description"] = json!(format!("good {i}"));
            row.to_string()
        })
        .collect();
    std::fs::write(&good, rows.join("\n")).expect("written");
    let (code, out) = cli(&[
        "import",
        &good.display().to_string(),
        "--url",
        &app.root,
        "--token",
        "t",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("10 rows read, 10 created, 0 skipped, 0 rejected"),
        "{out}"
    );
    let exported = dir.join("data.csv");
    let (code, out) = cli(&[
        "export",
        "--url",
        &app.root,
        "--filter",
        "usageType=DATA",
        "-o",
        &exported.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("11 usages written"), "{out}");
    let csv = std::fs::read_to_string(&exported).expect("the export");
    assert_eq!(csv.lines().count(), 12, "a header and 11 rows");
    let (code, out) = cli(&[
        "import",
        &good.display().to_string(),
        "--url",
        "http://127.0.0.1:9",
    ])
    .await;
    assert_eq!(code, 2, "no server: {out}");
    let (code, out) = cli(&["export", "--url", &app.root, "--filter", "sort=id"]).await;
    assert_eq!(code, 2, "an error answer: {out}");
    assert!(out.contains("400"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(crate::helpers::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(crate::helpers::Backend::Postgres).await } )* }
    };
}

both!(
    an_import_cut_by_sigkill_resumes_after_restart,
    an_import_whose_body_is_gone_fails_with_its_counts,
    the_commands_import_and_export_with_a_summary_and_exit_status
);
