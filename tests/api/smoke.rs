//! The shortest path through the API: create, then read back.

use crate::backend_tests;
use serde_json::json;

backend_tests! {
    async fn created_usage_reads_back(app) {
        let created = app.create("/usage", &json!({"usageType": "VOICE", "status": "received"})).await;
        let id = created["id"].as_str().expect("an id");
        let read: serde_json::Value = app.get(&format!("/usage/{id}")).await.json().await.unwrap();
        assert_eq!(read, created);
    }
}
