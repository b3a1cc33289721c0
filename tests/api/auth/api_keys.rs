//! API keys through the real binary: `tmf635 apikey create` before the server starts (which
//! turns authentication on), `list`, and `revoke` while it runs: the key is refused at once.

use crate::helpers::{assert_tmf_error, Backend, TestApp};
use reqwest::StatusCode;
use std::process::Command;

/// Runs `tmf635 apikey ARGS` against `database_url`; answers its stdout (asserting success).
pub fn apikey(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tmf635"))
        .arg("apikey")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "tmf635 apikey {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

async fn created_listed_used_and_revoked(backend: Backend) {
    let key = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let written = key.clone();
    let Some(app) = TestApp::spawn_prepared(
        backend,
        |_| {},
        |url| async move {
            let out = apikey(
                &url,
                &["create", "--name", "billing", "--scope", "usage.read"],
            );
            *written.lock().unwrap() = out.trim().to_string();
        },
    )
    .await
    else {
        return;
    };
    let key = key.lock().unwrap().clone();
    assert!(
        key.starts_with("tmf635_"),
        "the key is printed alone: {key:?}"
    );

    // Without credentials: refused, since a key exists.
    assert_tmf_error(app.get("/usage").await, 401).await;
    for header in ["x-api-key", "authorization"] {
        let value = if header == "authorization" {
            format!("Bearer {key}")
        } else {
            key.clone()
        };
        let response = app
            .client
            .get(app.url("/usage"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{header}");
    }
    let write = app
        .client
        .post(app.url("/usage"))
        .header("x-api-key", &key)
        .json(&crate::fixtures::voice_usage())
        .send()
        .await
        .unwrap();
    assert_tmf_error(write, 403).await;

    let listed = apikey(app.database_url(), &["list"]);
    assert!(
        listed.contains("billing") && listed.contains("usage.read"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "list never shows a key");
    let id = listed.split('\t').next().expect("an id").trim().to_string();
    apikey(app.database_url(), &["revoke", &id]);
    let response = app
        .client
        .get(app.url("/usage"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_tmf_error(response, 401).await;
    assert!(apikey(app.database_url(), &["list"]).contains("revoked 2"));
}

#[tokio::test]
async fn sqlite_api_key_created_listed_used_and_revoked() {
    created_listed_used_and_revoked(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_api_key_created_listed_used_and_revoked() {
    created_listed_used_and_revoked(Backend::Postgres).await;
}
