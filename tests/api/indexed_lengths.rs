//! Strings the database keeps in an index (the typed columns lists filter on, the array-value
//! index) hold at most 1,024 bytes on both backends: longer answers 400 naming the attribute
//! and writes nothing (PostgreSQL would otherwise refuse the index entry with a 500).

use crate::backend_tests;
use crate::fixtures::{voice_specification, voice_usage};
use crate::helpers::{assert_tmf_error, enc, id_of};
use serde_json::{json, Value};

/// `len` letters that do not compress (PostgreSQL compresses long index entries, so a
/// repeated letter would not reach its limit).
fn letters(len: usize) -> String {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((state >> 33) % 26) as u8)
        })
        .collect()
}

/// The voice usage with `value` at `path` (`usageType`, `relatedParty.id`, ...).
fn usage_with(path: &str, value: &str) -> Value {
    let mut usage = voice_usage();
    match path {
        "usageType" => usage["usageType"] = json!(value),
        "usageSpecification.id" => usage["usageSpecification"]["id"] = json!(value),
        "relatedParty.id" => usage["relatedParty"][0]["id"] = json!(value),
        "ratedProductUsage.productRef.id" => {
            usage["ratedProductUsage"] = json!([{"productRef": {"id": value}}])
        }
        other => panic!("no such path in this test: {other}"),
    }
    usage
}

const PATHS: [&str; 4] = [
    "usageType",
    "usageSpecification.id",
    "relatedParty.id",
    "ratedProductUsage.productRef.id",
];

backend_tests! {
    async fn an_indexed_string_over_1024_bytes_is_refused_naming_it(app) {
        for path in PATHS {
            let response = app.post("/usage", &usage_with(path, &letters(1025))).await;
            let message = assert_tmf_error(response, 400).await;
            assert!(message.contains(path), "{path}: {message}");
        }
        let mut specification = voice_specification();
        specification["name"] = json!(letters(5000));
        let response = app.post("/usageSpecification", &specification).await;
        let message = assert_tmf_error(response, 400).await;
        assert!(message.contains("name"), "{message}");
        assert_eq!(app.total("/usage").await, 0, "no usage stored");
        assert_eq!(app.total("/usageSpecification").await, 0, "no specification stored");
    }

    async fn an_indexed_string_of_1024_bytes_is_stored_and_found(app) {
        for path in PATHS {
            let value = letters(1024);
            let created = app.create("/usage", &usage_with(path, &value)).await;
            let found = app.list(&format!("/usage?{path}={}", enc(&value))).await;
            assert_eq!(found.ids(), vec![id_of(&created)], "{path}");
        }
    }

    async fn a_patch_making_an_indexed_string_too_long_changes_nothing(app) {
        let usage = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&usage));
        let response = app.patch(&path, &json!({"usageType": letters(3000)})).await;
        let message = assert_tmf_error(response, 400).await;
        assert!(message.contains("usageType"), "{message}");
        assert_eq!(app.read(&path).await["usageType"], usage["usageType"]);
    }
}
