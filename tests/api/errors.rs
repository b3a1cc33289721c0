//! Every class of client error: the right status, a TMF `Error` body, and nothing written.

use crate::fixtures::{voice_specification, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, TestApp};
use crate::{backend_tests, backend_tests_with};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Nothing was stored: no usage, no specification, no received event.
async fn assert_nothing_written(app: &TestApp) {
    assert_eq!(app.total("/usage").await, 0, "no usage stored");
    assert_eq!(
        app.total("/usageSpecification").await,
        0,
        "no specification stored"
    );
    assert_eq!(app.total("/listener/event").await, 0, "no event kept");
}

/// The operations that take a JSON body, on `usage` (an existing usage's id).
fn body_operations(usage: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/usage".into()),
        (Method::PATCH, format!("/usage/{usage}")),
        (Method::POST, "/usageSpecification".into()),
        (Method::POST, "/hub".into()),
        (Method::POST, "/listener/usageCreateEvent".into()),
        (
            Method::POST,
            "/listener/usageSpecificationDeleteEvent".into(),
        ),
    ]
}

/// Sends each raw JSON `body` to every operation that takes one; each must answer `status`
/// and change nothing (the one usage is as created, nothing else exists).
async fn assert_every_body_refused(
    app: &TestApp,
    content_type: Option<&str>,
    bodies: &[&[u8]],
    status: u16,
) {
    let usage = app.create("/usage", &voice_usage()).await;
    let id = id_of(&usage);
    for body in bodies {
        for (method, path) in body_operations(&id) {
            let response = app
                .send_raw(method.clone(), &path, content_type, body.to_vec())
                .await;
            let answered = response.status().as_u16();
            assert_eq!(
                answered,
                status,
                "{method} {path} with {:?}",
                String::from_utf8_lossy(body)
            );
            assert_tmf_error(response, status).await;
        }
    }
    assert_eq!(
        app.read(&format!("/usage/{id}")).await,
        usage,
        "the usage is unchanged"
    );
    let listing = app.list("/usage").await;
    assert_eq!(listing.ids(), vec![id.clone()], "no usage was created");
    assert_eq!(app.total("/usageSpecification").await, 0);
    assert_eq!(app.total("/listener/event").await, 0);
}

fn with(base: Value, pointer: &str, value: Value) -> Value {
    let mut body = base;
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} exists")) = value;
    body
}

fn without(base: Value, pointer: &str, key: &str) -> Value {
    let mut body = base;
    body.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{pointer} is an object"))
        .remove(key)
        .unwrap_or_else(|| panic!("{pointer} has {key}"));
    body
}

/// POSTs each body to `path`: each must be refused with 400 and store nothing.
async fn assert_refused(app: &TestApp, path: &str, bodies: Vec<Value>) {
    for body in bodies {
        let response = app.post(path, &body).await;
        let status = response.status();
        if status != StatusCode::BAD_REQUEST {
            panic!(
                "POST {path} {body}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        assert_tmf_error(response, 400).await;
    }
    assert_nothing_written(app).await;
}

backend_tests! {
    async fn an_unknown_route_is_404(app) {
        for url in [
            app.url("/nothing"),
            app.url("/usages"),
            app.url("/usage/a/b"),
            app.url("/listener/somethingElseEvent"),
            format!("{}/tmf-api/usageManagement/v5/usage", app.root),
            format!("{}/nothing/at/all", app.root),
        ] {
            let response = app.client.get(&url).send().await.unwrap();
            let message = assert_tmf_error(response, 404).await;
            assert!(!message.is_empty(), "GET {url}");
        }
        let response = app
            .client
            .post(app.url("/usages"))
            .json(&voice_usage())
            .send()
            .await
            .unwrap();
        assert_tmf_error(response, 404).await;
        assert_nothing_written(&app).await;
    }

    async fn a_wrong_method_on_a_known_path_is_405(app) {
        let usage = app.create("/usage", &voice_usage()).await;
        let id = id_of(&usage);
        let body = serde_json::to_vec(&voice_usage()).unwrap();
        for (method, path) in [
            (Method::PUT, format!("/usage/{id}")),
            (Method::POST, format!("/usage/{id}")),
            (Method::DELETE, "/usage".to_string()),
            (Method::PATCH, "/usage".to_string()),
            (Method::PUT, "/usageSpecification".to_string()),
            (Method::PUT, "/hub".to_string()),
            (Method::PUT, "/hub/some-id".to_string()),
            (Method::PATCH, "/hub/some-id".to_string()),
            (Method::GET, "/listener/usageCreateEvent".to_string()),
            (Method::DELETE, "/listener/event".to_string()),
        ] {
            let response = app
                .send_raw(
                    method.clone(),
                    &path,
                    Some("application/json"),
                    body.clone(),
                )
                .await;
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            assert_tmf_error(response, 405).await;
        }
        assert_eq!(
            app.read(&format!("/usage/{id}")).await,
            usage,
            "PUT and POST changed nothing"
        );
        assert_eq!(app.list("/usage").await.ids(), vec![id]);
    }

    async fn malformed_json_is_400(app) {
        let bodies: [&[u8]; 6] = [
            br#"{"usageType": "VOICE",}"#,
            br#"{usageType: "VOICE"}"#,
            br#"{'usageType': 'VOICE'}"#,
            br#"{"usageType": "VOICE"} {"usageType": "DATA"}"#,
            br#"{"usageType": "VOICE" "status": "rated"}"#,
            b"",
        ];
        assert_every_body_refused(&app, Some("application/json"), &bodies, 400).await;
    }

    async fn truncated_json_is_400(app) {
        let full = serde_json::to_vec(&voice_usage()).unwrap();
        let bodies: [&[u8]; 4] = [
            &full[..full.len() / 2],
            &full[..full.len() - 1],
            b"{",
            br#"{"usageType": "VOI"#,
        ];
        assert_every_body_refused(&app, Some("application/json"), &bodies, 400).await;
    }

    async fn json_that_is_not_an_object_is_400(app) {
        let bodies: [&[u8]; 7] = [
            b"[]",
            br#"[{"usageType": "VOICE", "callback": "https://ok.example.com/l"}]"#,
            br#""usage""#,
            b"42",
            b"true",
            b"null",
            b"  ",
        ];
        assert_every_body_refused(&app, Some("application/json"), &bodies, 400).await;
    }

    async fn an_invalid_utf8_body_is_400(app) {
        let bodies: [&[u8]; 3] = [
            b"{\"usageType\": \"VO\xffCE\", \"callback\": \"https://ok.example.com/l\"}",
            b"{\"description\": \"\xc3\x28\"}",
            b"\xfe\xff{}",
        ];
        assert_every_body_refused(&app, Some("application/json"), &bodies, 400).await;
    }

    async fn a_wrong_content_type_is_415(app) {
        let body = serde_json::to_string(
            &json!({"usageType": "VOICE", "callback": "https://ok.example.com/l"}),
        )
        .unwrap();
        let usage = app.create("/usage", &voice_usage()).await;
        let id = id_of(&usage);
        for content_type in [
            Some("text/plain"),
            Some("application/xml"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            for (method, path) in body_operations(&id) {
                let response = app
                    .send_raw(method.clone(), &path, content_type, body.clone())
                    .await;
                assert_eq!(
                    response.status().as_u16(),
                    415,
                    "{method} {path} as {content_type:?}"
                );
                assert_tmf_error(response, 415).await;
            }
        }
        assert_eq!(app.read(&format!("/usage/{id}")).await, usage);
        assert_eq!(app.total("/usage").await, 1);
        assert_eq!(app.total("/usageSpecification").await, 0);
        assert_eq!(app.total("/listener/event").await, 0);
    }

    async fn wrong_types_are_400(app) {
        let usage = voice_usage();
        assert_refused(
            &app,
            "/usage",
            vec![
                json!({"usageDate": 5}),
                json!({"usageDate": "2020-13-45T99:00:00Z"}),
                json!({"usageDate": "21/09/2020"}),
                json!({"usageCharacteristic": "x"}),
                json!({"usageCharacteristic": {"name": "duration", "value": 20}}),
                json!({"relatedParty": {"id": "p1", "@referredType": "Individual"}}),
                json!({"description": ["a", "b"]}),
                json!({"usageSpecification": "af59-340e"}),
                with(usage.clone(), "/ratedProductUsage/0/isBilled", json!("no")),
                with(usage.clone(), "/ratedProductUsage/0/taxRate", json!("20%")),
                with(
                    usage.clone(),
                    "/ratedProductUsage/0/taxIncludedRatingAmount/value",
                    json!("12.05"),
                ),
                with(
                    usage.clone(),
                    "/ratedProductUsage/0/ratingDate",
                    json!("later"),
                ),
                with(usage.clone(), "/usageCharacteristic/0/name", json!(null)),
            ],
        )
        .await;
        let spec = voice_specification();
        assert_refused(
            &app,
            "/usageSpecification",
            vec![
                json!({"isBundle": "true"}),
                json!({"lastUpdate": 1700000000}),
                json!({"validFor": "2024"}),
                with(spec.clone(), "/validFor/endDateTime", json!("never")),
                with(
                    spec.clone(),
                    "/specCharacteristic/0/minCardinality",
                    json!(1.5),
                ),
                with(
                    spec.clone(),
                    "/specCharacteristic/0/configurable",
                    json!("no"),
                ),
                with(
                    spec.clone(),
                    "/specCharacteristic/0/characteristicValueSpecification/0/valueFrom",
                    json!("0"),
                ),
                with(spec.clone(), "/attachment/0/size/amount", json!("1.5")),
            ],
        )
        .await;
    }

    async fn an_invalid_status_is_400_naming_the_value(app) {
        for status in ["nope", "RATED", "Rated", "", "billed "] {
            let response = app
                .post("/usage", &json!({"usageType": "VOICE", "status": status}))
                .await;
            let message = assert_tmf_error(response, 400).await;
            assert!(message.contains(&format!("\"{status}\"")), "{message}");
        }
        assert_refused(
            &app,
            "/usage",
            vec![json!({"status": 1}), json!({"status": ["rated"]})],
        )
        .await;
    }

    async fn missing_required_nested_fields_are_400(app) {
        let usage = voice_usage();
        assert_refused(
            &app,
            "/usage",
            vec![
                without(usage.clone(), "/usageCharacteristic/0", "name"),
                without(usage.clone(), "/usageCharacteristic/3", "value"),
                without(usage.clone(), "/relatedParty/0", "id"),
                without(usage.clone(), "/relatedParty/1", "@referredType"),
                without(usage.clone(), "/usageSpecification", "id"),
                without(usage.clone(), "/ratedProductUsage/0/productRef", "id"),
                json!({"usageCharacteristic": [{}]}),
                json!({"relatedParty": [{"role": "customer"}]}),
            ],
        )
        .await;
        let spec = voice_specification();
        assert_refused(
            &app,
            "/usageSpecification",
            vec![
                without(spec.clone(), "/relatedParty/0", "id"),
                without(spec.clone(), "/relatedParty/0", "@referredType"),
                without(
                    spec.clone(),
                    "/entitySpecRelationship/0",
                    "relationshipType",
                ),
                without(
                    spec.clone(),
                    "/entitySpecRelationship/0/associationSpec",
                    "id",
                ),
                without(spec.clone(), "/constraint/0", "id"),
                without(spec.clone(), "/targetEntitySchema", "@type"),
                without(spec.clone(), "/targetEntitySchema", "@schemaLocation"),
            ],
        )
        .await;
    }

    async fn non_numeric_or_negative_paging_is_400(app) {
        app.create("/usage", &voice_usage()).await;
        for path in ["/usage", "/usageSpecification", "/listener/event"] {
            for query in [
                "offset=abc",
                "offset=-1",
                "limit=ten",
                "limit=-5",
                "limit=1.5",
                "offset=1e3",
            ] {
                let message =
                    assert_tmf_error(app.get(&format!("{path}?{query}")).await, 400).await;
                let name = query.split('=').next().unwrap();
                assert!(message.contains(name), "GET {path}?{query}: {message}");
            }
        }
    }

    async fn an_unknown_filter_attribute_is_400_naming_it(app) {
        app.create("/usage", &voice_usage()).await;
        for (path, attribute) in [
            ("/usage", "colour"),
            ("/usage", "name"),
            ("/usage", "lifecycleStatus"),
            ("/usage", "relatedParty.colour"),
            ("/usage", "usageSpecification.version"),
            ("/usageSpecification", "usageType"),
            ("/usageSpecification", "status"),
        ] {
            let message =
                assert_tmf_error(app.get(&format!("{path}?{attribute}=x")).await, 400).await;
            assert!(
                message.contains(attribute),
                "GET {path}?{attribute}=x: {message}"
            );
        }
    }

    async fn an_unknown_attribute_in_fields_is_400(app) {
        let usage = app.create("/usage", &voice_usage()).await;
        let spec = app
            .create("/usageSpecification", &voice_specification())
            .await;
        for path in [
            "/usage?fields=status,colour".to_string(),
            format!("/usage/{}?fields=colour", id_of(&usage)),
            "/usageSpecification?fields=name,usageType".to_string(),
            format!("/usageSpecification/{}?fields=usageType", id_of(&spec)),
        ] {
            let message = assert_tmf_error(app.get(&path).await, 400).await;
            let unknown = path.rsplit([',', '=']).next().unwrap();
            assert!(message.contains(unknown), "GET {path}: {message}");
        }
    }

    async fn a_filter_value_of_the_wrong_type_is_400(app) {
        app.create("/usage", &voice_usage()).await;
        app.create("/usageSpecification", &voice_specification())
            .await;
        for path in [
            "/usage?usageDate=yesterday",
            "/usage?usageDate.gt=2020-13-01T00:00:00Z",
            "/usage?usageDate.lt=12345",
            "/usage?usageDate=2024-05-01T10:00:00Z,soon",
            "/usageSpecification?lastUpdate.gte=last%20week",
            "/usageSpecification?isBundle=maybe",
        ] {
            let message = assert_tmf_error(app.get(path).await, 400).await;
            let attribute = path.split(['?', '.', '=']).nth(1).unwrap();
            assert!(message.contains(attribute), "GET {path}: {message}");
        }
    }

    async fn a_filter_value_that_is_not_utf8_is_400(app) {
        app.create("/usage", &voice_usage()).await;
        assert_tmf_error(app.get("/usage?description=%FF%FE").await, 400).await;
    }

    async fn errors_answer_json_with_a_json_content_type(app) {
        for response in [
            app.get("/usage/unknown").await,
            app.get("/usage?offset=-1").await,
            app.send_raw(Method::PUT, "/usage", None, "").await,
        ] {
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], status.to_string());
            assert!(!body["code"].as_str().unwrap().is_empty());
            assert!(!body["reason"].as_str().unwrap().is_empty());
        }
    }
}

/// Bodies over `max_body_bytes` are refused before anything reads them.
mod body_limit {
    use super::*;

    const LIMIT: usize = 512;

    /// A usage body of exactly `size` bytes.
    fn usage_of_size(size: usize) -> Vec<u8> {
        let base = serde_json::to_vec(&json!({"usageType": "VOICE", "description": ""})).unwrap();
        let padding = "x".repeat(size - base.len());
        let body =
            serde_json::to_vec(&json!({"usageType": "VOICE", "description": padding})).unwrap();
        assert_eq!(body.len(), size);
        body
    }

    backend_tests_with! {
        |c: &mut tmf635::Config| c.max_body_bytes = LIMIT;

        async fn a_body_over_the_limit_is_413_and_stores_nothing(app) {
            let response = app
                .send_raw(
                    Method::POST,
                    "/usage",
                    Some("application/json"),
                    usage_of_size(LIMIT + 1),
                )
                .await;
            let message = assert_tmf_error(response, 413).await;
            assert!(message.contains(&LIMIT.to_string()), "{message}");
            let big_spec = json!({"name": "Big", "description": "y".repeat(LIMIT)});
            assert_tmf_error(app.post("/usageSpecification", &big_spec).await, 413).await;
            let big_hub =
                json!({"callback": format!("https://ok.example.com/{}", "z".repeat(LIMIT))});
            assert_tmf_error(app.post("/hub", &big_hub).await, 413).await;
            let big_event =
                json!({"eventType": "UsageCreateEvent", "description": "e".repeat(LIMIT)});
            assert_tmf_error(
                app.post("/listener/usageCreateEvent", &big_event).await,
                413,
            )
            .await;
            assert_nothing_written(&app).await;
        }

        async fn a_body_at_the_limit_is_accepted(app) {
            let response = app
                .send_raw(
                    Method::POST,
                    "/usage",
                    Some("application/json"),
                    usage_of_size(LIMIT),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            assert_eq!(app.total("/usage").await, 1);
        }

        async fn a_patch_over_the_limit_is_413_and_changes_nothing(app) {
            let created = app
                .create("/usage", &json!({"usageType": "VOICE", "status": "rated"}))
                .await;
            let path = format!("/usage/{}", id_of(&created));
            let patch = json!({"description": "p".repeat(LIMIT)});
            assert_tmf_error(app.patch(&path, &patch).await, 413).await;
            assert_eq!(app.read(&path).await, created);
        }

        async fn a_chunked_body_over_the_limit_is_413(app) {
            let body = usage_of_size(LIMIT + 100);
            let (half, rest) = body.split_at(body.len() / 2);
            let mut request = format!(
                "POST {}/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                crate::helpers::BASE_PATH
            )
            .into_bytes();
            for chunk in [half, rest] {
                request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend_from_slice(chunk);
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
            let (status, body) = app.raw_http(&request).await;
            assert_eq!(status, 413, "{body}");
            assert!(
                body.contains("\"status\":\"413\""),
                "a TMF Error body: {body}"
            );
            assert_nothing_written(&app).await;
        }

        async fn a_small_chunked_body_is_accepted(app) {
            let body = usage_of_size(100);
            let mut request = format!(
                "POST {}/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
                crate::helpers::BASE_PATH,
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            request.extend_from_slice(b"\r\n0\r\n\r\n");
            let (status, answer) = app.raw_http(&request).await;
            assert_eq!(status, 201, "{answer}");
            assert_eq!(app.total("/usage?usageType=VOICE").await, 1);
        }
    }
}
