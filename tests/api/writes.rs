//! PATCH and DELETE correctness on both resources: merge patch (RFC 7396) under both of its
//! content types, JSON Patch (RFC 6902) with every operation and its failure modes, 415 for
//! other content types, validation of the patched document, ETag / If-Match, `lastUpdate`,
//! DELETE then 404 everywhere, the usage status lifecycle, and bad input that must write
//! nothing.

use crate::fixtures::{specification, usage, voice_specification, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body, TestApp};
use crate::{backend_tests, backend_tests_with};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json";
const JSON_PATCH: &str = "application/json-patch+json";

/// PATCH with a content type, a raw body and an optional `If-Match`.
async fn patch_as(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
    if_match: Option<&str>,
) -> Response {
    let mut request = app.client.patch(app.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.expect("PATCH answers")
}

/// PATCH with `content_type` and a JSON body.
async fn patch_json(app: &TestApp, path: &str, content_type: &str, body: &Value) -> Response {
    patch_as(app, path, Some(content_type), body.to_string(), None).await
}

async fn delete_if(app: &TestApp, path: &str, if_match: &str) -> Response {
    app.client
        .delete(app.url(path))
        .header("if-match", if_match)
        .send()
        .await
        .expect("DELETE answers")
}

/// Asserts 200 and answers the body.
async fn ok_body(response: Response, what: &str) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{what}: {text}");
    serde_json::from_str(&text).expect("a JSON body")
}

fn etag_of(response: &Response) -> String {
    response
        .headers()
        .get("etag")
        .unwrap_or_else(|| panic!("an ETag on {} {}", response.status(), response.url()))
        .to_str()
        .expect("an ASCII ETag")
        .to_string()
}

async fn etag_now(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    etag_of(&response)
}

fn remove(value: &mut Value, key: &str) {
    value
        .as_object_mut()
        .expect("an object")
        .remove(key)
        .unwrap_or_else(|| panic!("{key} was there"));
}

/// One usage and one specification, as created; the state bad writes must leave alone.
struct World {
    usage: Value,
    spec: Value,
    usage_path: String,
    spec_path: String,
}

impl World {
    async fn new(app: &TestApp, usage: Value, spec: Value) -> World {
        let usage = app.create("/usage", &usage).await;
        let spec = app.create("/usageSpecification", &spec).await;
        World {
            usage_path: format!("/usage/{}", id_of(&usage)),
            spec_path: format!("/usageSpecification/{}", id_of(&spec)),
            usage,
            spec,
        }
    }

    async fn full(app: &TestApp) -> World {
        World::new(app, voice_usage(), voice_specification()).await
    }

    /// Both resources read back as created, and nothing else exists.
    async fn assert_unchanged(&self, app: &TestApp, after: &str) {
        assert_eq!(
            app.read(&self.usage_path).await,
            self.usage,
            "the usage is unchanged after {after}"
        );
        assert_eq!(
            app.read(&self.spec_path).await,
            self.spec,
            "the specification is unchanged after {after}"
        );
        assert_eq!(app.total("/usage").await, 1, "one usage after {after}");
        assert_eq!(
            app.total("/usageSpecification").await,
            1,
            "one specification after {after}"
        );
    }

    /// PATCH of the usage, and (with `posts`) POST of a new usage.
    fn usage_targets(&self, posts: bool) -> Vec<(Method, String)> {
        let mut targets = vec![(Method::PATCH, self.usage_path.clone())];
        if posts {
            targets.push((Method::POST, "/usage".into()));
        }
        targets
    }

    /// PATCH of the specification, and (with `posts`) POST of a new specification.
    fn spec_targets(&self, posts: bool) -> Vec<(Method, String)> {
        let mut targets = vec![(Method::PATCH, self.spec_path.clone())];
        if posts {
            targets.push((Method::POST, "/usageSpecification".into()));
        }
        targets
    }

    /// Sends each raw body with `content_type` as a PATCH of both resources and (with
    /// `posts`) as a POST of both collections: each must answer `status` with a TMF Error
    /// and write nothing.
    async fn assert_refused(
        &self,
        app: &TestApp,
        content_type: &str,
        bodies: &[Vec<u8>],
        status: u16,
        posts: bool,
    ) {
        let mut targets = self.usage_targets(posts);
        targets.extend(self.spec_targets(posts));
        self.assert_refused_at(app, content_type, bodies, status, &targets)
            .await;
    }

    /// Sends each raw body with `content_type` to each target: each must answer `status`
    /// with a TMF Error and write nothing.
    async fn assert_refused_at(
        &self,
        app: &TestApp,
        content_type: &str,
        bodies: &[Vec<u8>],
        status: u16,
        targets: &[(Method, String)],
    ) {
        for body in bodies {
            let shown = String::from_utf8_lossy(body);
            let shown = shown.chars().take(120).collect::<String>();
            for (method, path) in targets {
                let response = app
                    .send_raw(method.clone(), path, Some(content_type), body.clone())
                    .await;
                let answered = response.status().as_u16();
                if answered != status {
                    panic!(
                        "{method} {path} as {content_type} with {shown:?}: {answered} {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                assert_tmf_error(response, status).await;
            }
            self.assert_unchanged(app, &format!("{content_type} {shown:?}"))
                .await;
        }
    }
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// `[[[...0...]]]`, `depth` arrays deep.
fn nested_arrays(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

backend_tests! {
    async fn merge_patch_removes_merges_and_replaces_under_both_content_types(app) {
        for content_type in [MERGE, JSON, "application/merge-patch+json; charset=utf-8", "Application/JSON"] {
            let created = app.create("/usage", &voice_usage()).await;
            let path = format!("/usage/{}", id_of(&created));
            let patch = json!({
                "description": null,
                "roamingZone": null,
                "status": "billed",
                "usageSpecification": {"id": "af59-340e", "name": "CallSpec v2", "href": null},
                "usageCharacteristic": [{"name": "only", "value": {"kept": [1, 2]}}],
                "newExtension": {"a": 1}
            });
            let patched = ok_body(
                patch_json(&app, &path, content_type, &patch).await,
                content_type,
            )
            .await;
            let mut expected = created.clone();
            remove(&mut expected, "description");
            remove(&mut expected, "roamingZone");
            expected["status"] = json!("billed");
            expected["usageSpecification"] = json!({
                "id": "af59-340e",
                "name": "CallSpec v2",
                "@referredType": "UsageSpecification"
            });
            expected["usageCharacteristic"] = json!([{"name": "only", "value": {"kept": [1, 2]}}]);
            expected["newExtension"] = json!({"a": 1});
            assert_eq!(patched, expected, "PATCH as {content_type}");
            assert_eq!(app.read(&path).await, expected, "stored as {content_type}");
            // null inside a nested object removes only that member; a null whole object goes.
            let patched = ok_body(
                patch_json(&app, &path, content_type, &json!({"newExtension": {"a": null, "b": 2}, "usageSpecification": null})).await,
                content_type,
            )
            .await;
            remove(&mut expected, "usageSpecification");
            expected["newExtension"] = json!({"b": 2});
            assert_eq!(patched, expected, "PATCH as {content_type}");
            assert_eq!(app.read(&path).await, expected);
        }
    }

    async fn merge_patch_of_a_specification_merges_valid_for_and_replaces_arrays(app) {
        let created = app.create("/usageSpecification", &voice_specification()).await;
        let path = format!("/usageSpecification/{}", id_of(&created));
        for content_type in [MERGE, JSON] {
            let before = app.read(&path).await;
            let patch = json!({
                "validFor": {"endDateTime": "2031-01-01T00:00:00Z"},
                "attachment": null,
                "specCharacteristic": [{"name": "only", "valueType": "string"}],
                "version": format!("2.0-{content_type}")
            });
            let patched = ok_body(patch_json(&app, &path, content_type, &patch).await, content_type).await;
            let mut expected = before.clone();
            expected["validFor"] = json!({"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2031-01-01T00:00:00Z"});
            expected.as_object_mut().unwrap().remove("attachment");
            expected["specCharacteristic"] = json!([{"name": "only", "valueType": "string"}]);
            expected["version"] = patch["version"].clone();
            expected["lastUpdate"] = patched["lastUpdate"].clone();
            assert_eq!(patched, expected, "PATCH as {content_type}");
            assert_eq!(app.read(&path).await, expected);
        }
        let patched = ok_body(
            patch_json(&app, &path, MERGE, &json!({"validFor": {"endDateTime": null}})).await,
            "null end",
        )
        .await;
        assert_eq!(patched["validFor"], json!({"startDateTime": "2020-01-01T00:00:00Z"}));
    }

    async fn json_patch_applies_every_operation_in_order(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        let operations = json!([
            {"op": "test", "path": "/status", "value": "rated"},
            {"op": "test", "path": "/usageCharacteristic/3/value", "value": 20},
            {"op": "replace", "path": "/usageCharacteristic/1/value", "value": "33612345678"},
            {"op": "replace", "path": "/usageCharacteristic/3/value", "value": 25},
            {"op": "add", "path": "/usageCharacteristic/-", "value": {"name": "roaming", "value": true}},
            {"op": "add", "path": "/usageCharacteristic/0", "value": {"name": "first", "value": "x"}},
            {"op": "remove", "path": "/relatedParty/1"},
            {"op": "add", "path": "/description", "value": "patched"},
            {"op": "remove", "path": "/usageCharacteristic/7/value/location"},
            {"op": "copy", "from": "/usageSpecification/name", "path": "/usageType"},
            {"op": "move", "from": "/roamingZone", "path": "/ratedProductUsage/0/usageRatingTag"},
            {"op": "replace", "path": "/ratedProductUsage/0/taxRate", "value": 19.6},
            {"op": "add", "path": "/ratedProductUsage/0/isBilled", "value": true},
            {"op": "test", "path": "/usageCharacteristic/4/value", "value": 25}
        ]);
        let patched = ok_body(patch_json(&app, &path, JSON_PATCH, &operations).await, "JSON Patch").await;
        let mut expected = created.clone();
        expected["usageCharacteristic"][1]["value"] = json!("33612345678");
        expected["usageCharacteristic"][3]["value"] = json!(25);
        remove(&mut expected["usageCharacteristic"][6]["value"], "location");
        let characteristics = expected["usageCharacteristic"].as_array_mut().unwrap();
        characteristics.push(json!({"name": "roaming", "value": true}));
        characteristics.insert(0, json!({"name": "first", "value": "x"}));
        expected["relatedParty"].as_array_mut().unwrap().remove(1);
        expected["description"] = json!("patched");
        expected["usageType"] = json!("CallSpec");
        remove(&mut expected, "roamingZone");
        expected["ratedProductUsage"][0]["usageRatingTag"] = json!("EU");
        expected["ratedProductUsage"][0]["taxRate"] = json!(19.6);
        expected["ratedProductUsage"][0]["isBilled"] = json!(true);
        assert_eq!(patched, expected);
        assert_eq!(app.read(&path).await, expected);
        assert_eq!(
            patched["usageCharacteristic"].as_array().unwrap().len(),
            9,
            "7 characteristics, one appended, one inserted"
        );
        // The media type may carry parameters.
        let patched = ok_body(
            patch_json(
                &app,
                &path,
                "application/json-patch+json; charset=utf-8",
                &json!([{"op": "replace", "path": "/status", "value": "billed"}]),
            )
            .await,
            "with charset",
        )
        .await;
        assert_eq!(patched["status"], "billed");
        // And on a specification.
        let spec = app.create("/usageSpecification", &voice_specification()).await;
        let spec_path = format!("/usageSpecification/{}", id_of(&spec));
        let patched = ok_body(
            patch_json(&app, &spec_path, JSON_PATCH, &json!([
                {"op": "replace", "path": "/specCharacteristic/1/characteristicValueSpecification/1/value", "value": "HOUR"},
                {"op": "replace", "path": "/isBundle", "value": true},
                {"op": "remove", "path": "/constraint"}
            ]))
            .await,
            "JSON Patch of a specification",
        )
        .await;
        let mut expected = spec.clone();
        expected["specCharacteristic"][1]["characteristicValueSpecification"][1]["value"] = json!("HOUR");
        expected["isBundle"] = json!(true);
        remove(&mut expected, "constraint");
        expected["lastUpdate"] = patched["lastUpdate"].clone();
        assert_eq!(patched, expected);
        assert_eq!(app.read(&spec_path).await, expected);
    }

    async fn a_failing_json_patch_test_applies_nothing(app) {
        let world = World::full(&app).await;
        let tag = etag_now(&app, &world.usage_path).await;
        for operations in [
            json!([
                {"op": "replace", "path": "/status", "value": "billed"},
                {"op": "test", "path": "/usageType", "value": "DATA"}
            ]),
            json!([{"op": "test", "path": "/usageCharacteristic/3/value", "value": "20"}]),
            json!([
                {"op": "remove", "path": "/relatedParty"},
                {"op": "test", "path": "/status", "value": "billed"}
            ]),
        ] {
            let response = patch_json(&app, &world.usage_path, JSON_PATCH, &operations).await;
            assert_tmf_error(response, 409).await;
            let response = patch_json(&app, &world.spec_path, JSON_PATCH, &json!([
                {"op": "replace", "path": "/name", "value": "Other"},
                {"op": "test", "path": "/isBundle", "value": true}
            ]))
            .await;
            assert_tmf_error(response, 409).await;
            world.assert_unchanged(&app, &operations.to_string()).await;
        }
        assert_eq!(etag_now(&app, &world.usage_path).await, tag, "no new version");
    }

    async fn a_json_patch_path_that_does_not_exist_is_422_and_applies_nothing(app) {
        let world = World::full(&app).await;
        for operations in [
            json!([{"op": "replace", "path": "/nothing/here", "value": 1}]),
            json!([{"op": "replace", "path": "/colour", "value": "red"}]),
            json!([{"op": "remove", "path": "/usageCharacteristic/99"}]),
            json!([{"op": "remove", "path": "/nothing"}]),
            json!([{"op": "add", "path": "/usageCharacteristic/99", "value": {"name": "n", "value": 1}}]),
            json!([{"op": "add", "path": "/nothing/deeper", "value": 1}]),
            json!([{"op": "move", "from": "/nothing", "path": "/description"}]),
            json!([{"op": "copy", "from": "/relatedParty/5", "path": "/description"}]),
            json!([
                {"op": "replace", "path": "/description", "value": "changed first"},
                {"op": "remove", "path": "/usageCharacteristic/42/value"}
            ]),
        ] {
            for path in [&world.usage_path, &world.spec_path] {
                let response = patch_json(&app, path, JSON_PATCH, &operations).await;
                let status = response.status().as_u16();
                if status != 422 {
                    panic!("PATCH {path} {operations}: {status} {}", response.text().await.unwrap_or_default());
                }
                assert_tmf_error(response, 422).await;
            }
            world.assert_unchanged(&app, &operations.to_string()).await;
        }
    }

    async fn patching_id_or_href_is_422_under_every_patch_format(app) {
        let world = World::full(&app).await;
        for operations in [
            json!([{"op": "replace", "path": "/id", "value": "mine"}]),
            json!([{"op": "add", "path": "/id", "value": "mine"}]),
            json!([{"op": "remove", "path": "/id"}]),
            json!([{"op": "remove", "path": "/href"}]),
            json!([{"op": "replace", "path": "/href", "value": "https://elsewhere.example.com/x"}]),
            json!([{"op": "copy", "from": "/description", "path": "/href"}]),
            json!([{"op": "move", "from": "/id", "path": "/description"}]),
        ] {
            for path in [&world.usage_path, &world.spec_path] {
                let response = patch_json(&app, path, JSON_PATCH, &operations).await;
                let message = assert_tmf_error(response, 422).await;
                assert!(message.contains("id") || message.contains("href"), "{operations}: {message}");
            }
            world.assert_unchanged(&app, &operations.to_string()).await;
        }
        for patch in [json!({"id": "mine"}), json!({"href": "https://elsewhere.example.com/x"}), json!({"id": null})] {
            for content_type in [MERGE, JSON] {
                for path in [&world.usage_path, &world.spec_path] {
                    let response = patch_json(&app, path, content_type, &patch).await;
                    assert_tmf_error(response, 422).await;
                }
            }
            world.assert_unchanged(&app, &patch.to_string()).await;
        }
        // Testing id (without changing it) is fine.
        let id = id_of(&world.usage);
        let response = patch_json(&app, &world.usage_path, JSON_PATCH, &json!([
            {"op": "test", "path": "/id", "value": id}
        ]))
        .await;
        assert_eq!(ok_body(response, "test /id").await, world.usage);
    }

    async fn any_other_content_type_is_415_and_changes_nothing(app) {
        let world = World::full(&app).await;
        let merge = json!({"status": "billed"}).to_string();
        let operations = json!([{"op": "replace", "path": "/status", "value": "billed"}]).to_string();
        for content_type in [
            Some("text/plain"),
            Some("application/xml"),
            Some("text/json"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/merge-patch"),
            None,
        ] {
            for body in [&merge, &operations] {
                for path in [&world.usage_path, &world.spec_path] {
                    let response = patch_as(&app, path, content_type, body.clone(), None).await;
                    assert_eq!(response.status().as_u16(), 415, "PATCH {path} as {content_type:?}");
                    assert_tmf_error(response, 415).await;
                }
            }
        }
        world.assert_unchanged(&app, "415s").await;
    }

    async fn a_json_patch_leaving_an_invalid_resource_is_422_and_applies_nothing(app) {
        let world = World::full(&app).await;
        for operations in [
            json!([{"op": "replace", "path": "/status", "value": "nope"}]),
            json!([{"op": "replace", "path": "/status", "value": 3}]),
            json!([{"op": "add", "path": "/usageDate", "value": "yesterday"}]),
            json!([{"op": "remove", "path": "/usageCharacteristic/0/name"}]),
            json!([{"op": "remove", "path": "/relatedParty/0/@referredType"}]),
            json!([{"op": "replace", "path": "/relatedParty", "value": "everyone"}]),
            json!([{"op": "replace", "path": "/ratedProductUsage/0/isBilled", "value": "no"}]),
            json!([{"op": "replace", "path": "/ratedProductUsage/0/taxRate", "value": "20%"}]),
            json!([{"op": "remove", "path": "/usageSpecification/id"}]),
            json!([{"op": "replace", "path": "", "value": [1, 2]}]),
            json!([
                {"op": "replace", "path": "/description", "value": "fine"},
                {"op": "replace", "path": "/status", "value": "nope"}
            ]),
        ] {
            let response = patch_json(&app, &world.usage_path, JSON_PATCH, &operations).await;
            let status = response.status().as_u16();
            if status != 422 {
                panic!("{operations}: {status} {}", response.text().await.unwrap_or_default());
            }
            assert_tmf_error(response, 422).await;
            world.assert_unchanged(&app, &operations.to_string()).await;
        }
        let message = assert_tmf_error(
            patch_json(&app, &world.usage_path, JSON_PATCH, &json!([{"op": "replace", "path": "/status", "value": "nope"}])).await,
            422,
        )
        .await;
        assert!(message.contains("nope"), "{message}");
        for operations in [
            json!([{"op": "replace", "path": "/isBundle", "value": "yes"}]),
            json!([{"op": "replace", "path": "/validFor/startDateTime", "value": "soon"}]),
            json!([{"op": "remove", "path": "/targetEntitySchema/@type"}]),
            json!([{"op": "replace", "path": "/specCharacteristic/0/minCardinality", "value": 1.5}]),
        ] {
            let response = patch_json(&app, &world.spec_path, JSON_PATCH, &operations).await;
            assert_tmf_error(response, 422).await;
            world.assert_unchanged(&app, &operations.to_string()).await;
        }
    }

    async fn a_malformed_json_patch_document_is_400(app) {
        let world = World::full(&app).await;
        let bodies: Vec<Vec<u8>> = vec![
            bytes(&json!({"op": "replace", "path": "/status", "value": "billed"})),
            bytes(&json!({"status": "billed"})),
            bytes(&json!([{"op": "frobnicate", "path": "/status"}])),
            bytes(&json!([{"path": "/status", "value": "billed"}])),
            bytes(&json!([{"op": "replace", "value": "billed"}])),
            bytes(&json!([{"op": "move", "path": "/description"}])),
            bytes(&json!([{"op": "copy", "path": "/description"}])),
            bytes(&json!([{"op": "replace", "path": 5, "value": "billed"}])),
            bytes(&json!(["replace"])),
            bytes(&json!("replace")),
            b"[{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"billed\"}".to_vec(),
            b"".to_vec(),
        ];
        world.assert_refused(&app, JSON_PATCH, &bodies, 400, false).await;
    }

    async fn etags_change_with_each_version_and_if_match_guards_writes(app) {
        for (collection, body, change) in [
            ("/usage", voice_usage(), json!({"status": "billed"})),
            ("/usageSpecification", voice_specification(), json!({"version": "2.0"})),
        ] {
            let response = app.post(collection, &body).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let created_tag = etag_of(&response);
            let created = json_body(response).await;
            let path = format!("{collection}/{}", id_of(&created));
            assert_eq!(etag_now(&app, &path).await, created_tag, "retrieve answers the create ETag");
            assert!(
                created_tag.starts_with('"') && created_tag.ends_with('"'),
                "a strong ETag: {created_tag}"
            );

            // Matching If-Match: applied, with a new ETag.
            let response = patch_as(&app, &path, Some(MERGE), change.to_string(), Some(&created_tag)).await;
            let patched_tag = etag_of(&response);
            let patched = ok_body(response, "PATCH with the current ETag").await;
            assert_ne!(patched_tag, created_tag, "a new version, a new ETag");
            assert_eq!(etag_now(&app, &path).await, patched_tag);

            // Stale, weak, foreign or listed-but-stale tags: 412, nothing changed.
            let weak = format!("W/{patched_tag}");
            for tag in [created_tag.as_str(), weak.as_str(), "\"nope\"", "\"999\", \"998\"", "garbage"] {
                for (content_type, patch) in [
                    (MERGE, json!({"description": "lost update"})),
                    (JSON_PATCH, json!([{"op": "add", "path": "/description", "value": "lost update"}])),
                ] {
                    let response = patch_as(&app, &path, Some(content_type), patch.to_string(), Some(tag)).await;
                    assert_tmf_error(response, 412).await;
                }
                assert_tmf_error(delete_if(&app, &path, tag).await, 412).await;
                assert_eq!(app.read(&path).await, patched, "unchanged after If-Match {tag}");
                assert_eq!(etag_now(&app, &path).await, patched_tag);
            }

            // A list holding the current tag matches; so does `*`.
            let listed = format!("\"999\", {patched_tag}");
            let response = patch_as(
                &app,
                &path,
                Some(JSON_PATCH),
                json!([{"op": "add", "path": "/description", "value": "listed"}]).to_string(),
                Some(&listed),
            )
            .await;
            let listed_tag = etag_of(&response);
            assert_eq!(ok_body(response, "If-Match list").await["description"], "listed");
            let response = patch_as(&app, &path, Some(MERGE), json!({"description": "star"}).to_string(), Some("*")).await;
            let star_tag = etag_of(&response);
            assert_eq!(ok_body(response, "If-Match *").await["description"], "star");
            assert_ne!(star_tag, listed_tag);
            assert_eq!(app.read(&path).await["description"], "star");

            // DELETE with the current tag.
            assert_eq!(delete_if(&app, &path, &star_tag).await.status(), StatusCode::NO_CONTENT);
            assert_tmf_error(app.get(&path).await, 404).await;
        }
        // DELETE with `*`.
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        assert_eq!(delete_if(&app, &path, "*").await.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.total("/usage").await, 0);
        // If-Match on an unknown resource is still 404.
        assert_tmf_error(
            patch_as(&app, &path, Some(MERGE), "{}", Some("*")).await,
            404,
        )
        .await;
    }

    async fn concurrent_writes_with_one_if_match_let_exactly_one_win(app) {
        for (collection, body) in [("/usage", voice_usage()), ("/usageSpecification", voice_specification())] {
            let created = app.create(collection, &body).await;
            let path = format!("{collection}/{}", id_of(&created));
            let tag = etag_now(&app, &path).await;
            let writers = (0..6).map(|i| {
                let (app, path, tag) = (&app, &path, &tag);
                async move {
                    let operations = json!([{"op": "add", "path": "/description", "value": format!("writer {i}")}]);
                    let response = patch_as(app, path, Some(JSON_PATCH), operations.to_string(), Some(tag)).await;
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (status, body)
                }
            });
            let answers = crate::helpers::join_all(writers).await;
            let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
            let losers = answers.iter().filter(|(s, _)| *s == 412).count();
            assert_eq!(winners.len(), 1, "exactly one writer holding {tag} wins: {answers:?}");
            assert_eq!(losers, 5, "the others get 412: {answers:?}");
            let read = app.read(&path).await;
            assert_eq!(read["description"], winners[0]["description"], "the winner's change is stored");
            // Concurrent deletes: one 204, the rest 404.
            let deleters = (0..4).map(|_| {
                let (app, path) = (&app, &path);
                async move { app.delete(path).await.status().as_u16() }
            });
            let mut statuses = crate::helpers::join_all(deleters).await;
            statuses.sort_unstable();
            assert_eq!(statuses, vec![204, 404, 404, 404], "DELETE {path} four times at once");
            assert_tmf_error(app.get(&path).await, 404).await;
        }
    }

    async fn last_update_of_a_specification_moves_forward_on_every_patch(app) {
        let parse = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a lastUpdate: {v}")))
                .unwrap_or_else(|e| panic!("{v}: {e}"))
        };
        let started = chrono::Utc::now() - chrono::Duration::seconds(1);
        // Stamped at creation when absent.
        let created = app.create("/usageSpecification", &specification("Stamped", "active")).await;
        let path = format!("/usageSpecification/{}", id_of(&created));
        let mut last = parse(&created["lastUpdate"]);
        assert!(last >= started, "{last} is now");
        for (content_type, body) in [
            (MERGE, json!({"description": "first change"})),
            (JSON, json!({"lifecycleStatus": "retired"})),
            (JSON_PATCH, json!([{"op": "replace", "path": "/version", "value": "9"}])),
            // A client's own lastUpdate does not hold it back.
            (MERGE, json!({"lastUpdate": "2000-01-01T00:00:00Z"})),
            (JSON_PATCH, json!([{"op": "remove", "path": "/lastUpdate"}])),
        ] {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let patched = ok_body(patch_json(&app, &path, content_type, &body).await, &body.to_string()).await;
            let now = parse(&patched["lastUpdate"]);
            assert!(now > last, "{body}: lastUpdate {now} after {last}");
            assert!(now <= chrono::Utc::now() + chrono::Duration::seconds(1), "{now} is not in the future");
            assert_eq!(app.read(&path).await["lastUpdate"], patched["lastUpdate"]);
            last = now;
        }
        // A client's lastUpdate at creation is kept, and a patch still moves it forward.
        let mut old = specification("Old", "active");
        old["lastUpdate"] = json!("2001-02-03T04:05:06+01:00");
        let created = app.create("/usageSpecification", &old).await;
        assert_eq!(created["lastUpdate"], "2001-02-03T04:05:06+01:00");
        let path = format!("/usageSpecification/{}", id_of(&created));
        let patched = ok_body(patch_json(&app, &path, MERGE, &json!({"version": "2"})).await, "old").await;
        assert!(parse(&patched["lastUpdate"]) >= started);
        assert_eq!(app.total("/usageSpecification?lastUpdate.lt=2002-01-01T00:00:00Z").await, 0);
    }

    async fn a_malformed_last_update_in_a_patch_is_400_and_changes_nothing(app) {
        let world = World::full(&app).await;
        for body in [json!({"lastUpdate": "soon"}), json!({"lastUpdate": 1700000000})] {
            for content_type in [MERGE, JSON] {
                let response = patch_json(&app, &world.spec_path, content_type, &body).await;
                let message = assert_tmf_error(response, 400).await;
                assert!(message.contains("lastUpdate"), "{body}: {message}");
            }
        }
        let response = patch_json(
            &app,
            &world.spec_path,
            JSON_PATCH,
            &json!([{"op": "add", "path": "/lastUpdate", "value": "soon"}]),
        )
        .await;
        // A well-formed JSON Patch whose result breaks the schema: 422 (RFC 5789).
        assert_tmf_error(response, 422).await;
        world.assert_unchanged(&app, "malformed lastUpdate").await;
    }

    async fn a_deleted_resource_is_404_on_every_later_operation(app) {
        for (collection, body) in [("/usage", voice_usage()), ("/usageSpecification", voice_specification())] {
            let kept = app.create(collection, &body).await;
            let gone = app.create(collection, &body).await;
            let id = id_of(&gone);
            let path = format!("{collection}/{id}");
            let response = app.delete(&path).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            assert!(response.bytes().await.unwrap().is_empty(), "204 has no body");
            for _ in 0..2 {
                let message = assert_tmf_error(app.get(&path).await, 404).await;
                assert!(message.contains(&id), "{message}");
                assert_tmf_error(app.get(&format!("{path}?fields=id")).await, 404).await;
                assert_tmf_error(patch_json(&app, &path, MERGE, &json!({"description": "back"})).await, 404).await;
                assert_tmf_error(patch_json(&app, &path, JSON, &json!({})).await, 404).await;
                assert_tmf_error(
                    patch_json(&app, &path, JSON_PATCH, &json!([{"op": "add", "path": "/description", "value": "x"}])).await,
                    404,
                )
                .await;
                assert_tmf_error(app.delete(&path).await, 404).await;
                assert_tmf_error(delete_if(&app, &path, "*").await, 404).await;
            }
            let listing = app.list(collection).await;
            assert_eq!(listing.ids(), vec![id_of(&kept)], "only the other one is listed");
            assert_eq!(app.total(&format!("{collection}?id={id}")).await, 0);
            assert_eq!(app.read(&format!("{collection}/{}", id_of(&kept))).await, kept);
        }
    }

    async fn without_lifecycle_checks_any_status_change_is_allowed(app) {
        let created = app.create("/usage", &usage("VOICE", "billed")).await;
        let path = format!("/usage/{}", id_of(&created));
        for status in ["received", "billed", "rated", "guided", "rejected"] {
            let patched = ok_body(patch_json(&app, &path, MERGE, &json!({"status": status})).await, status).await;
            assert_eq!(patched["status"], status);
        }
        let patched = ok_body(
            patch_json(&app, &path, JSON_PATCH, &json!([{"op": "replace", "path": "/status", "value": "received"}])).await,
            "JSON Patch",
        )
        .await;
        assert_eq!(patched["status"], "received");
        assert_eq!(app.read(&path).await["status"], "received");
    }

    async fn bad_json_bodies_are_400_and_write_nothing(app) {
        let world = World::full(&app).await;
        let full = bytes(&json!({"description": "x", "usageType": "VOICE"}));
        let bodies: Vec<Vec<u8>> = vec![
            br#"{"description": "x",}"#.to_vec(),
            br#"{description: "x"}"#.to_vec(),
            br#"{"description": "x"} {"description": "y"}"#.to_vec(),
            full[..full.len() / 2].to_vec(),
            full[..full.len() - 1].to_vec(),
            b"{".to_vec(),
            b"".to_vec(),
            b"{\"description\": \"VO\xffCE\"}".to_vec(),
            b"{\"description\": \"\xc3\x28\"}".to_vec(),
            b"\xfe\xff{}".to_vec(),
            b"[]".to_vec(),
            b"null".to_vec(),
            b"42".to_vec(),
        ];
        for content_type in [MERGE, JSON] {
            world.assert_refused(&app, content_type, &bodies, 400, content_type == JSON).await;
        }
        world.assert_refused(&app, JSON_PATCH, &bodies[..10], 400, false).await;
    }

    async fn wrong_types_unknown_enums_and_missing_nested_attributes_are_400(app) {
        let world = World::full(&app).await;
        let usage_bodies = [
            json!({"usageDate": 5}),
            json!({"usageDate": "21/09/2020"}),
            json!({"status": "nope"}),
            json!({"status": "BILLED"}),
            json!({"status": ["billed"]}),
            json!({"usageCharacteristic": "x"}),
            json!({"usageCharacteristic": [{"name": "only"}]}),
            json!({"usageCharacteristic": [{"value": 1}]}),
            json!({"relatedParty": [{"role": "customer"}]}),
            json!({"relatedParty": [{"id": "p", "role": "customer"}]}),
            json!({"relatedParty": {"id": "p", "@referredType": "Individual"}}),
            json!({"ratedProductUsage": [{"isBilled": "no"}]}),
            json!({"ratedProductUsage": [{"taxRate": "20%"}]}),
            json!({"ratedProductUsage": [{"productRef": {"name": "no id"}}]}),
            json!({"ratedProductUsage": [{"taxIncludedRatingAmount": {"value": "12"}}]}),
            json!({"usageSpecification": "af59-340e"}),
        ];
        for body in &usage_bodies {
            for content_type in [MERGE, JSON] {
                let response = patch_json(&app, &world.usage_path, content_type, body).await;
                let status = response.status().as_u16();
                if status != 400 {
                    panic!("PATCH usage {body}: {status} {}", response.text().await.unwrap_or_default());
                }
                assert_tmf_error(response, 400).await;
            }
            assert_tmf_error(app.post("/usage", body).await, 400).await;
            world.assert_unchanged(&app, &body.to_string()).await;
        }
        let spec_bodies = [
            json!({"isBundle": "yes"}),
            json!({"isBundle": 1}),
            json!({"validFor": {"startDateTime": "soon"}}),
            json!({"validFor": "2024"}),
            json!({"relatedParty": [{"id": "org"}]}),
            json!({"constraint": [{"name": "no id"}]}),
            json!({"entitySpecRelationship": [{"id": "x"}]}),
            json!({"specCharacteristic": [{"name": "c", "minCardinality": "one"}]}),
            json!({"specCharacteristic": [{"name": "c", "maxCardinality": 1.5}]}),
            json!({"attachment": [{"size": {"amount": "big"}}]}),
        ];
        for body in &spec_bodies {
            for content_type in [MERGE, JSON] {
                let response = patch_json(&app, &world.spec_path, content_type, body).await;
                let status = response.status().as_u16();
                if status != 400 {
                    panic!("PATCH spec {body}: {status} {}", response.text().await.unwrap_or_default());
                }
                assert_tmf_error(response, 400).await;
            }
            assert_tmf_error(app.post("/usageSpecification", body).await, 400).await;
            world.assert_unchanged(&app, &body.to_string()).await;
        }
        let message = assert_tmf_error(patch_json(&app, &world.usage_path, MERGE, &json!({"status": "nope"})).await, 400).await;
        assert!(message.contains("nope"), "the message names the value: {message}");
    }

    async fn huge_numbers_in_number_fields_are_400_and_write_nothing(app) {
        let world = World::full(&app).await;
        let zeros = "0".repeat(400);
        let usage_bodies: Vec<Vec<u8>> = vec![
            br#"{"ratedProductUsage": [{"taxRate": 1e999}]}"#.to_vec(),
            br#"{"ratedProductUsage": [{"taxRate": -1e999}]}"#.to_vec(),
            format!(r#"{{"ratedProductUsage": [{{"taxRate": 1{zeros}}}]}}"#).into_bytes(),
            br#"{"ratedProductUsage": [{"taxIncludedRatingAmount": {"unit": "EUR", "value": 1e400}}]}"#.to_vec(),
            // `format: float`: beyond the largest 32-bit float.
            br#"{"ratedProductUsage": [{"taxRate": 3.5e38}]}"#.to_vec(),
        ];
        let spec_bodies: Vec<Vec<u8>> = vec![
            br#"{"specCharacteristic": [{"name": "c", "minCardinality": 1e999}]}"#.to_vec(),
            format!(r#"{{"specCharacteristic": [{{"name": "c", "maxCardinality": 1{zeros}}}]}}"#).into_bytes(),
            br#"{"attachment": [{"size": {"amount": 1e400, "units": "MB"}}]}"#.to_vec(),
        ];
        for content_type in [JSON, MERGE] {
            let posts = content_type == JSON;
            world.assert_refused_at(&app, content_type, &usage_bodies, 400, &world.usage_targets(posts)).await;
            world.assert_refused_at(&app, content_type, &spec_bodies, 400, &world.spec_targets(posts)).await;
        }
        let operations: Vec<Vec<u8>> = vec![
            br#"[{"op": "replace", "path": "/ratedProductUsage/0/taxRate", "value": 1e999}]"#.to_vec(),
            br#"[{"op": "add", "path": "/ratedProductUsage/0/taxExcludedRatingAmount/value", "value": -1e999}]"#.to_vec(),
        ];
        world
            .assert_refused_at(&app, JSON_PATCH, &operations, 400, &world.usage_targets(false))
            .await;
        // The largest numbers of the field's format are fine, and keep their value.
        let big = app
            .create("/usage", &json!({"usageType": "DATA", "ratedProductUsage": [{"taxRate": 3.4e38}],
                "usageCharacteristic": [{"name": "n", "value": -1.7e308}]}))
            .await;
        let read = app.read(&format!("/usage/{}", id_of(&big))).await;
        assert_eq!(read["ratedProductUsage"][0]["taxRate"].as_f64(), Some(3.4e38), "{read}");
        assert_eq!(read["usageCharacteristic"][0]["value"].as_f64(), Some(-1.7e308), "{read}");
    }

    async fn deeply_nested_json_is_400_and_writes_nothing(app) {
        let world = World::full(&app).await;
        let deep = nested_arrays(10_000);
        let bodies: Vec<Vec<u8>> = vec![
            format!(r#"{{"usageCharacteristic": [{{"name": "deep", "value": {deep}}}]}}"#).into_bytes(),
            format!(r#"{{"description": "x", "extension": {deep}}}"#).into_bytes(),
            format!(r#"{{"nested": {}0{}}}"#, "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ];
        world.assert_refused(&app, JSON, &bodies, 400, true).await;
        world.assert_refused(&app, MERGE, &bodies, 400, false).await;
        let operations = vec![
            format!(r#"[{{"op": "add", "path": "/usageCharacteristic/-", "value": {{"name": "deep", "value": {deep}}}}}]"#).into_bytes(),
        ];
        world.assert_refused(&app, JSON_PATCH, &operations, 400, false).await;
        // A moderately deep value is kept as sent.
        let value: Value = serde_json::from_str(&nested_arrays(100)).unwrap();
        let created = app
            .create("/usage", &json!({"usageType": "DATA", "usageCharacteristic": [{"name": "deep", "value": value}]}))
            .await;
        let read = app.read(&format!("/usage/{}", id_of(&created))).await;
        assert_eq!(read["usageCharacteristic"][0]["value"], value);
    }

    async fn a_non_integer_or_negative_offset_is_400(app) {
        World::full(&app).await;
        for path in ["/usage", "/usageSpecification"] {
            for query in ["offset=1.5", "offset=one", "offset=-1", "limit=2.0", "offset=0x10"] {
                let message = assert_tmf_error(app.get(&format!("{path}?{query}")).await, 400).await;
                let name = query.split('=').next().unwrap();
                assert!(message.contains(name), "GET {path}?{query}: {message}");
            }
        }
    }
}

/// The usage status lifecycle, when the server is told to enforce it.
mod lifecycle {
    use super::*;

    backend_tests_with! {
        |c: &mut tmf635::Config| c.enforce_usage_lifecycle = true;

        async fn allowed_transitions_pass_and_a_billed_usage_cannot_go_back(app) {
            let created = app.create("/usage", &usage("VOICE", "received")).await;
            let path = format!("/usage/{}", id_of(&created));
            let rated = ok_body(patch_json(&app, &path, MERGE, &json!({"status": "rated"})).await, "received -> rated").await;
            assert_eq!(rated["status"], "rated");
            let billed = ok_body(
                patch_json(&app, &path, JSON_PATCH, &json!([{"op": "replace", "path": "/status", "value": "billed"}])).await,
                "rated -> billed",
            )
            .await;
            assert_eq!(billed["status"], "billed");
            // Other changes of a billed usage are fine; its status stays.
            let billed = ok_body(patch_json(&app, &path, JSON, &json!({"description": "invoiced"})).await, "description").await;
            for (content_type, body) in [
                (MERGE, json!({"status": "rated"})),
                (JSON, json!({"status": "received", "description": "sneaky"})),
                (JSON_PATCH, json!([{"op": "replace", "path": "/status", "value": "rated"}])),
                (JSON_PATCH, json!([{"op": "remove", "path": "/description"}, {"op": "replace", "path": "/status", "value": "rerated"}])),
            ] {
                let message = assert_tmf_error(patch_json(&app, &path, content_type, &body).await, 409).await;
                assert!(message.contains("billed"), "{message}");
                assert_eq!(app.read(&path).await, billed, "unchanged after {body}");
            }
            // Creating in any status is not a transition.
            app.create("/usage", &usage("DATA", "billed")).await;
            // received cannot jump to billed.
            let fresh = app.create("/usage", &usage("SMS", "received")).await;
            let fresh_path = format!("/usage/{}", id_of(&fresh));
            assert_tmf_error(patch_json(&app, &fresh_path, MERGE, &json!({"status": "billed"})).await, 409).await;
            assert_eq!(app.read(&fresh_path).await, fresh);
        }
    }
}

/// Bodies over `max_body_bytes` on PATCH.
mod body_limit {
    use super::*;

    const LIMIT: usize = 512;

    backend_tests_with! {
        |c: &mut tmf635::Config| c.max_body_bytes = LIMIT;

        async fn a_patch_over_the_limit_is_413_and_changes_nothing(app) {
            let world = World::new(&app, usage("VOICE", "rated"), specification("Small", "active")).await;
            let long = "x".repeat(LIMIT);
            let bodies = [
                (MERGE, bytes(&json!({"description": long}))),
                (JSON, bytes(&json!({"description": long}))),
                (JSON_PATCH, bytes(&json!([{"op": "add", "path": "/description", "value": long}]))),
                ("text/plain", long.clone().into_bytes()),
            ];
            for (content_type, body) in &bodies {
                for path in [&world.usage_path, &world.spec_path] {
                    let response = app.send_raw(Method::PATCH, path, Some(content_type), body.clone()).await;
                    let status = response.status().as_u16();
                    assert!(
                        status == 413 || (status == 415 && *content_type == "text/plain"),
                        "PATCH {path} as {content_type}: {status}"
                    );
                    assert_tmf_error(response, status).await;
                }
            }
            world.assert_unchanged(&app, "413s").await;
            // A body just under the limit is not refused as too large: the limit is what
            // refused the others. The resource it would make is larger than the limit, though,
            // which no PATCH may grow a resource past.
            let fits = "y".repeat(LIMIT - 40);
            let response = patch_json(&app, &world.usage_path, MERGE, &json!({"description": fits})).await;
            let message = assert_tmf_error(response, 422).await;
            assert!(message.contains(&format!("larger than {LIMIT} bytes")), "{message}");
            let response = patch_json(&app, &world.usage_path, MERGE, &json!({"description": "short"})).await;
            assert_eq!(ok_body(response, "under the limit").await["description"], json!("short"));
        }

        async fn a_chunked_patch_over_the_limit_is_413_and_changes_nothing(app) {
            let world = World::new(&app, usage("VOICE", "rated"), specification("Small", "active")).await;
            let chunked = |path: &str, content_type: &str, body: &[u8]| {
                let mut request = format!(
                    "PATCH {}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
                     Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                    crate::helpers::BASE_PATH
                )
                .into_bytes();
                for chunk in body.chunks(100) {
                    request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    request.extend_from_slice(chunk);
                    request.extend_from_slice(b"\r\n");
                }
                request.extend_from_slice(b"0\r\n\r\n");
                request
            };
            let long = "x".repeat(LIMIT + 100);
            for (content_type, body) in [
                (MERGE, bytes(&json!({"description": long}))),
                (JSON_PATCH, bytes(&json!([{"op": "add", "path": "/description", "value": long}]))),
            ] {
                for path in [&world.usage_path, &world.spec_path] {
                    let (status, answer) = app.raw_http(&chunked(path, content_type, &body)).await;
                    assert_eq!(status, 413, "chunked PATCH {path} as {content_type}: {answer}");
                    assert!(answer.contains("\"status\":\"413\""), "a TMF Error: {answer}");
                }
            }
            world.assert_unchanged(&app, "chunked 413s").await;
            // A small chunked patch is applied.
            let body = bytes(&json!([{"op": "add", "path": "/description", "value": "chunked"}]));
            let (status, answer) = app.raw_http(&chunked(&world.usage_path, JSON_PATCH, &body)).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(app.read(&world.usage_path).await["description"], "chunked");
        }
    }
}
