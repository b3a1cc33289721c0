//! Regression tests for input the server once took wrongly: strings that were numbers, partial
//! nested merge patches, NUL characters, the `Allow` header of a 405, big integers. Each
//! comment says what the server used to do.

use crate::backend_tests;
use crate::fixtures::{voice_specification, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests! {
    // Was a bug: a string attribute takes a JSON number or boolean. poem-openapi's `String`
    // parses 42 as "42" and true as "true", so the check passes, and the document (kept as
    // sent) is stored with the number: `POST /usage {"usageType": 42}` answers 201 with
    // `"usageType": 42`, a usage that breaks its own schema (and that `?usageType=42`
    // cannot find on PostgreSQL... nor any client typed on the schema read).
    async fn a_number_or_boolean_for_a_string_attribute_is_400(app) {
        for body in [
            json!({"usageType": 42}),
            json!({"description": true}),
            json!({"usageCharacteristic": [{"name": 5, "value": 1}]}),
            json!({"relatedParty": [{"id": 45, "role": "customer", "@referredType": "Individual"}]}),
            json!({"usageSpecification": {"id": 7}}),
        ] {
            let response = app.post("/usage", &body).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "POST /usage {body}: {text}"
            );
        }
        let response = app
            .post("/usageSpecification", &json!({"name": 5, "version": 1.0}))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.total("/usage").await, 0);
        assert_eq!(app.total("/usageSpecification").await, 0);
    }

    // Was a bug: same cause, on PATCH: `PATCH /usage/{id} {"usageType": 7}` answers 200 and stores
    // `"usageType": 7`.
    async fn a_patch_with_a_number_for_a_string_attribute_is_400(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        assert_tmf_error(app.patch(&path, &json!({"usageType": 7})).await, 400).await;
        assert_eq!(app.read(&path).await, created);
    }

    // Was a bug: same cause, on /hub: `POST /hub {"callback": "https://ok.example.com/l",
    // "query": 5}` answers 201 and silently drops the query (the subscription then gets
    // every event instead of the ones asked for).
    async fn a_hub_query_that_is_not_a_string_is_400(app) {
        let response = app
            .post(
                "/hub",
                &json!({"callback": "https://ok.example.com/l", "query": 5}),
            )
            .await;
        assert_tmf_error(response, 400).await;
        let response = app
            .post(
                "/hub",
                &json!({"callback": "https://ok.example.com/l", "query": true}),
            )
            .await;
        assert_tmf_error(response, 400).await;
    }

    // Was a bug: same cause, on the listeners: `POST /listener/usageCreateEvent
    // {"eventType": true, ...}` answers 201 and keeps the event; a non-string eventType
    // also skips the check that the event is of the listener's type. `"eventId": 6` is kept
    // too.
    async fn a_listener_event_with_a_non_string_event_type_or_id_is_400(app) {
        let event = json!({
            "eventId": "evt-1",
            "eventTime": "2024-05-01T10:00:00Z",
            "eventType": true,
            "event": {"usage": {"id": "u-1", "status": "received"}}
        });
        assert_tmf_error(app.post("/listener/usageCreateEvent", &event).await, 400).await;
        let mut event = event;
        event["eventType"] = json!("UsageCreateEvent");
        event["eventId"] = json!(6);
        assert_tmf_error(app.post("/listener/usageCreateEvent", &event).await, 400).await;
        assert_eq!(app.total("/listener/event").await, 0);
    }

    // Was a bug: the PATCH body is checked as if each nested object were whole, so a merge patch of
    // part of a nested object is refused when it leaves out a required attribute, although
    // the merged result keeps it: `PATCH /usage/{id} {"usageSpecification": {"name":
    // "CallSpec v2"}}` answers 400 "Expected input type "string", found null. (occurred
    // while parsing "UsageSpecificationRef")". RFC 7396 merges first; only the merged
    // resource has to be valid (the server does check it: see
    // usage::a_patch_that_leaves_the_usage_invalid_is_400_and_changes_nothing).
    async fn a_merge_patch_of_part_of_a_nested_object_is_merged(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        let response = app
            .patch(
                &path,
                &json!({"usageSpecification": {"name": "CallSpec v2"}}),
            )
            .await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{text}");
        let patched: Value = serde_json::from_str(&text).unwrap();
        let mut expected = created["usageSpecification"].clone();
        expected["name"] = json!("CallSpec v2");
        assert_eq!(patched["usageSpecification"], expected);
        // The same on a specification: targetEntitySchema requires @type and @schemaLocation.
        let spec = app
            .create("/usageSpecification", &voice_specification())
            .await;
        let spec_path = format!("/usageSpecification/{}", id_of(&spec));
        let response = app
            .patch(
                &spec_path,
                &json!({"targetEntitySchema": {"@type": "DataUsage"}}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let patched = json_body(response).await;
        assert_eq!(patched["targetEntitySchema"]["@type"], "DataUsage");
        assert_eq!(
            patched["targetEntitySchema"]["@schemaLocation"],
            spec["targetEntitySchema"]["@schemaLocation"]
        );
    }

    // Was a bug (PostgreSQL): a string holding U+0000 is valid JSON but cannot be stored in a
    // jsonb column: `POST /usage {"description": "nul \u0000 here"}` answers 500 on
    // PostgreSQL (201 on SQLite). Expected the same answer on both backends, never a 500:
    // either stored and read back unchanged, or refused with 400.
    async fn a_nul_character_in_a_string_is_never_a_500(app) {
        let posted = json!({
            "description": "nul \u{0} here",
            "usageCharacteristic": [{"name": "raw", "value": "a\u{0}b"}]
        });
        let response = app.post("/usage", &posted).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match status {
            StatusCode::CREATED => {
                let created: Value = serde_json::from_str(&text).unwrap();
                let read = app.read(&format!("/usage/{}", id_of(&created))).await;
                assert_eq!(read["description"], posted["description"]);
                assert_eq!(read["usageCharacteristic"], posted["usageCharacteristic"]);
            }
            StatusCode::BAD_REQUEST => assert_eq!(app.total("/usage").await, 0),
            other => panic!("POST /usage with U+0000 answered {other}: {text}"),
        }
    }

    // Was a bug: a 405 carries no `Allow` header. RFC 9110 §15.5.6: "The origin server MUST
    // generate an Allow header field in a 405 response containing a list of the target
    // resource's currently supported methods." `PUT /usage/{id}` answers 405 without it.
    async fn a_405_lists_the_allowed_methods(app) {
        let created = app.create("/usage", &voice_usage()).await;
        for (method, path, allowed) in [
            (
                Method::PUT,
                format!("/usage/{}", id_of(&created)),
                vec!["DELETE", "GET", "PATCH"],
            ),
            (Method::DELETE, "/usage".to_string(), vec!["GET", "POST"]),
            (Method::PUT, "/hub".to_string(), vec!["GET", "POST"]),
        ] {
            let response = app.send_raw(method.clone(), &path, None, "").await;
            assert_eq!(response.status().as_u16(), 405);
            let allow = response
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: 405 without an Allow header"))
                .to_str()
                .unwrap()
                .to_string();
            let mut listed: Vec<&str> = allow
                .split(',')
                .map(str::trim)
                .filter(|m| *m != "HEAD")
                .collect();
            listed.sort();
            assert_eq!(listed, allowed, "{method} {path}: Allow: {allow}");
        }
    }

    // Was a bug: numbers lose digits. `src/model/document.rs` promises the stored document keeps
    // what the client wrote, "number spelling" included, but JSON is parsed into f64/i64/u64:
    // `"value": 123456789012345678901234567890` comes back as `1.2345678901234568e+29`
    // (an identifier or counter sent as a JSON number is silently changed).
    async fn a_large_integer_keeps_its_digits(app) {
        let body = r#"{"usageType":"DATA","usageCharacteristic":[{"name":"octets","value":123456789012345678901234567890}]}"#;
        let response = app
            .send_raw(Method::POST, "/usage", Some("application/json"), body)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = response.text().await.unwrap();
        assert!(
            created.contains("123456789012345678901234567890"),
            "create answered {created}"
        );
        let id = id_of(&serde_json::from_str(&created).unwrap());
        let read = app.get(&format!("/usage/{id}")).await.text().await.unwrap();
        assert!(
            read.contains("123456789012345678901234567890"),
            "retrieve answered {read}"
        );
    }
}
