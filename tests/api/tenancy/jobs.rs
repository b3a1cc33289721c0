//! Import and export jobs across tenants: a job and the usages it imports or exports belong to
//! the caller's tenant; another tenant does not see the job, and its exports hold only its
//! own usages.

use crate::bulk::{export, import, NDJSON};
use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, json_body};
use serde_json::{json, Value};

/// The ids in an NDJSON export.
fn exported_ids(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let row: Value = serde_json::from_str(l).expect("an NDJSON row");
            row["id"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

crate::tenancy_tests! {
    async fn another_tenants_jobs_and_usages_are_not_theirs(t) {
        let rows: Vec<String> = (0..3).map(|n| {
            let mut row = usage("VOICE", "rated");
            row["id"] = json!(format!("a-{n}"));
            row.to_string()
        }).collect();
        let imported = import(&t.a, NDJSON, rows.join("\n")).await;
        assert_eq!(imported["rowsCreated"], 3, "{imported}");
        let import_id = imported["id"].as_str().unwrap_or_default().to_string();
        let export_job = json_body(t.a.post("/exportJob", &json!({"query": "usageType=VOICE"})).await).await;
        let export_id = export_job["id"].as_str().unwrap_or_default().to_string();

        for b in [&t.b, &t.b_key] {
            assert_tmf_error(b.get(&format!("/importJob/{import_id}")).await, 404).await;
            assert_tmf_error(b.get(&format!("/exportJob/{export_id}")).await, 404).await;
            assert_tmf_error(b.get(&format!("/exportJob/{export_id}/download")).await, 404).await;
            assert_eq!(json_body(b.get("/importJob").await).await, json!([]));
            assert_eq!(json_body(b.get("/exportJob").await).await, json!([]));
            assert_eq!(b.total("/usage").await, 0, "a's import is not b's");
        }
        // b's export of everything holds b's usages only; a's holds a's.
        t.b.create("/usage", &usage("VOICE", "rated")).await;
        let b_export = exported_ids(&export(&t.b, "", NDJSON).await);
        assert_eq!(b_export.len(), 1, "{b_export:?}");
        assert!(b_export.iter().all(|id| !id.starts_with("a-")), "{b_export:?}");
        let a_export = exported_ids(&export(&t.a, "usageType=VOICE", NDJSON).await);
        assert_eq!(a_export, ["a-0", "a-1", "a-2"]);
        let a_jobs = json_body(t.a.get("/exportJob").await).await;
        assert_eq!(a_jobs.as_array().map(Vec::len), Some(2), "{a_jobs}");
    }
}
