//! Regression tests found by the `query` and `writes` suites and by schemathesis: JSON Patch
//! `test` compares numbers by value and reads every number a document may hold, and `.regex`
//! means the same on both backends (or is refused with 400).
//! Each comment says what the server used to do.

use crate::backend_tests;
use crate::fixtures::voice_usage;
use crate::helpers::{enc, id_of, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn json_patch(
    app: &crate::helpers::TestApp,
    path: &str,
    operations: &Value,
) -> reqwest::Response {
    app.send_raw(
        reqwest::Method::PATCH,
        path,
        Some("application/json-patch+json"),
        operations.to_string(),
    )
    .await
}

/// GETs `path`: a 400 naming `attribute`, or a 200 answering exactly `expected` (ids);
/// anything else (a 500, a 200 with other items) fails.
async fn assert_400_or_exactly(app: &TestApp, path: &str, attribute: &str, expected: &[String]) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match status {
        400 => assert!(
            text.contains(attribute),
            "GET {path}: 400 naming {attribute}: {text}"
        ),
        200 => {
            let items: Value = serde_json::from_str(&text).unwrap();
            let mut ids: Vec<String> = items.as_array().unwrap().iter().map(id_of).collect();
            ids.sort();
            let mut expected = expected.to_vec();
            expected.sort();
            assert_eq!(ids, expected, "GET {path} matches the text of the value");
        }
        _ => panic!("GET {path}: {status} {text}"),
    }
}

backend_tests! {
    // Was a bug: a JSON Patch `test` compares numbers by their spelling, not their value. RFC 6902
    // section 4.6: numbers "are considered equal if their values are numerically equal".
    // With `"value": 20` stored, `PATCH /usage/{id}` (application/json-patch+json)
    // `[{"op": "test", "path": "/usageCharacteristic/3/value", "value": 20.0}]` answers 409
    // "JSON Patch test failed" (so does `2e1`; and `0.50` or `5e-1` against a stored 0.5),
    // expected 200. Cause: json_patch's `test` uses serde_json `Value` equality, which
    // with `arbitrary_precision` compares the number text (and without it tells 20 from
    // 20.0 anyway); on PostgreSQL, jsonb also respells numbers (1e2 is read back as 100),
    // so a `test` of a value exactly as the client posted it can fail there only.
    async fn a_json_patch_test_compares_numbers_by_value(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        assert_eq!(created["usageCharacteristic"][3]["value"], json!(20));
        for value in ["20.0", "2e1", "20.000", "2.0E1"] {
            let operations: Value = serde_json::from_str(&format!(
                r#"[{{"op": "test", "path": "/usageCharacteristic/3/value", "value": {value}}},
                    {{"op": "replace", "path": "/description", "value": "tested {value}"}}]"#
            ))
            .unwrap();
            let response = json_patch(&app, &path, &operations).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::OK, "test 20 against {value}: {text}");
        }
        // taxRate 20.5 as 20.50 and 2.05e1.
        for value in ["20.50", "2.05e1"] {
            let operations: Value = serde_json::from_str(&format!(
                r#"[{{"op": "test", "path": "/ratedProductUsage/0/taxRate", "value": {value}}}]"#
            ))
            .unwrap();
            let response = json_patch(&app, &path, &operations).await;
            assert_eq!(response.status(), StatusCode::OK, "test 20.5 against {value}");
        }
    }

    // Was a bug: `.regex` on an attribute that is not a string. On PostgreSQL,
    // `GET /usage?usageDate.regex=2024`, `?ratedProductUsage.taxRate.regex=25` and
    // `GET /usageSpecification?lastUpdate.regex=2024` answer 500 (the SQL applies `~` to a
    // timestamptz or a double precision: "operator does not exist"). On SQLite they answer
    // 200 but nested date-times (read through julianday()), numbers and booleans (1/0)
    // never match: `?ratedProductUsage.isBilled.regex=^true$` is [] on SQLite and matches
    // on PostgreSQL. Expected, on both backends alike: a 400 naming the attribute (regex
    // is for text), or a match on the value's JSON text.
    async fn a_regex_on_a_date_time_number_or_boolean_is_400_or_matches_its_text(app) {
        let usage = app
            .create(
                "/usage",
                &json!({
                    "usageType": "VOICE",
                    "usageDate": "2024-05-01T10:00:00Z",
                    "ratedProductUsage": [{"taxRate": 0.25, "isBilled": true, "ratingDate": "2024-05-01T10:00:00Z"}]
                }),
            )
            .await;
        app.create("/usage", &json!({"usageType": "DATA", "usageDate": "2023-01-01T00:00:00Z",
            "ratedProductUsage": [{"taxRate": 0.5, "isBilled": false, "ratingDate": "2023-01-01T00:00:00Z"}]}))
            .await;
        let spec = app
            .create(
                "/usageSpecification",
                &json!({"name": "s", "isBundle": true, "lastUpdate": "2024-03-01T00:00:00Z",
                    "validFor": {"startDateTime": "2024-01-01T00:00:00Z"}}),
            )
            .await;
        app.create("/usageSpecification", &json!({"name": "t", "isBundle": false,
            "lastUpdate": "2023-03-01T00:00:00Z", "validFor": {"startDateTime": "2023-01-01T00:00:00Z"}}))
            .await;
        let usage = vec![id_of(&usage)];
        let spec = vec![id_of(&spec)];
        for (path, attribute, expected) in [
            ("/usage?usageDate.regex=2024", "usageDate", &usage),
            ("/usage?ratedProductUsage.ratingDate.regex=2024", "ratedProductUsage.ratingDate", &usage),
            ("/usage?ratedProductUsage.taxRate.regex=25", "ratedProductUsage.taxRate", &usage),
            (
                &format!("/usage?ratedProductUsage.isBilled.regex={}", enc("^true$")),
                "ratedProductUsage.isBilled",
                &usage,
            ),
            ("/usageSpecification?lastUpdate.regex=2024", "lastUpdate", &spec),
            ("/usageSpecification?validFor.startDateTime.regex=2024", "validFor.startDateTime", &spec),
            (&format!("/usageSpecification?isBundle.regex={}", enc("^true$")), "isBundle", &spec),
        ] {
            assert_400_or_exactly(&app, path, attribute, expected).await;
        }
    }

    // Was a bug (PostgreSQL): `.regex` patterns are checked with Rust's regex syntax but run by
    // PostgreSQL's `~` (POSIX ARE), which reads some of them otherwise. Patterns the check
    // accepts answer 500 on PostgreSQL: `usageType.regex=(?P<n>VOICE)`, `(?<n>VOICE)`,
    // `^\p{Lu}{5}$`, `VOICE\z`; and `\bVOICE\b` (a word boundary to Rust, a backspace to
    // PostgreSQL) silently matches nothing. SQLite (Rust's regex) matches the VOICE usage
    // with each. Expected: the same answer on both backends (translate or refuse with 400
    // what PostgreSQL reads differently; never a 500).
    async fn a_regex_means_the_same_on_both_backends(app) {
        let voice = app.create("/usage", &json!({"usageType": "VOICE"})).await;
        app.create("/usage", &json!({"usageType": "DATA"})).await;
        let expected = vec![id_of(&voice)];
        for pattern in ["(?P<n>VOICE)", "(?<n>VOICE)", "^\\p{Lu}{5}$", "VOICE\\z", "\\bVOICE\\b"] {
            let path = format!("/usage?usageType.regex={}", enc(pattern));
            assert_400_or_exactly(&app, &path, "usageType", &expected).await;
        }
    }

    // Was a bug (found by schemathesis): a JSON Patch whose `value` is an integer past 64 bits,
    // `[{"op": "add", "path": "/usageCharacteristic", "value": [{"name": "n", "value":
    // 332311947646454477121259476877312}]}]`, answered 400 "the body is not a JSON Patch ...
    // as u128", and so did one with such an integer in a member the operation does not define
    // (RFC 6902: ignored), though POST /usage stores that value. Expected: 200, the value kept.
    async fn a_json_patch_reads_every_number_a_document_holds(app) {
        let big = "332311947646454477121259476877312";
        let created = app.create("/usage", &json!({"usageType": "VOICE"})).await;
        let path = format!("/usage/{}", id_of(&created));
        for (operations, expected) in [
            (
                format!(r#"[{{"op": "add", "path": "/usageCharacteristic", "value": [{{"name": "n", "value": {big}}}]}}]"#),
                format!(r#"[{{"name":"n","value":{big}}}]"#),
            ),
            (
                format!(r#"[{{"op": "test", "path": "/usageCharacteristic/0/value", "value": {big}}}, {{"op": "replace", "path": "/usageType", "value": "SMS", "note": {big}}}]"#),
                format!(r#"[{{"name":"n","value":{big}}}]"#),
            ),
        ] {
            let operations: Value = serde_json::from_str(&operations).unwrap();
            let response = json_patch(&app, &path, &operations).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::OK, "{operations}: {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            let expected: Value = serde_json::from_str(&expected).unwrap();
            assert_eq!(body["usageCharacteristic"], expected, "{text}");
        }
        assert_eq!(app.read(&path).await["usageType"], json!("SMS"));
    }
}
