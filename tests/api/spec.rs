//! The OpenAPI document the server serves, checked against
//! (a) its source, `api/tmf635.openapi.json`;
//! (b) TM Forum's official TMF635 v4.0.0 swagger 2.0 (`../shared/reference/`), less what
//!     `api/` marks `x-tmf635-extension: true` — operations, parameters, responses, response
//!     headers, media types of bodies, schemas or properties — each such mark having to name
//!     something the official swagger does not have;
//! (c) its YAML form, and the `/` redirect to Swagger UI.
//!
//! Without the official swagger (a machine with no `../shared`; env TMF635_REFERENCE_SWAGGER
//! names another path) (b) prints `SKIPPED: ...` and passes, unless
//! TMF635_TEST_REQUIRE_REFERENCE=1 (CI), when it fails.
//!
//! Each document is reduced to a canonical set of facts, `key -> value`, e.g.
//! `operation GET /usage response 200 header x-result-count` -> `integer` or
//! `schema Usage/properties/status` -> `$ref UsageStatusType`, and two documents are equal when
//! their facts are. A mismatch prints every fact that is missing, extra or different. A body
//! of the swagger 2.0 (`in: body` parameter, response `schema`) counts as a body of each of
//! its `consumes`/`produces` media types.
//!
//! Left out of the facts, as what legitimately differs between the documents: the OpenAPI
//! version (3.0.0 vs 3.0.3, checked apart), descriptions, summaries, titles, examples and
//! defaults, `x-` extensions, parameter serialisation (`style`, `explode`), `deprecated: false`,
//! `required` on response headers, media type parameters (`; charset=utf-8`), the case of
//! header names (HTTP header names are case-insensitive; poem-openapi upper-cases them), the
//! order of everything, and `allOf: [{$ref}]` wrappers (with description-only siblings), which
//! count as the bare `$ref`. Against the official swagger, rules the served spec states where it
//! states none (`minimum`, `enum`, `pattern`, lengths) are set aside too. Any schema keyword
//! the normaliser does not know is kept as a fact in canonical JSON, so nothing unknown slips
//! through.

use crate::helpers::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Canonical facts of a document: key -> value, sorted by key.
type Facts = BTreeMap<String, String>;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const REFERENCE_FILE: &str = "TMF635-UsageManagement-v4.0.0.swagger.json";

// --- reading the documents -----------------------------------------------------------------

fn api_document() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("api/tmf635.openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `../shared/reference/` beside the repository, or env TMF635_REFERENCE_SWAGGER.
fn reference_path() -> PathBuf {
    match std::env::var_os("TMF635_REFERENCE_SWAGGER") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference")
            .join(REFERENCE_FILE),
    }
}

/// The official swagger, or None (after saying so) when it is absent and not required.
fn reference_document() -> Option<Value> {
    let path = reference_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display())),
        ),
        Err(e) => {
            if std::env::var("TMF635_TEST_REQUIRE_REFERENCE").is_ok_and(|v| v == "1") {
                panic!(
                    "the reference swagger is required (TMF635_TEST_REQUIRE_REFERENCE=1) but \
                     cannot be read at {}: {e}",
                    path.display()
                );
            }
            eprintln!("SKIPPED: reference swagger not found at {}", path.display());
            None
        }
    }
}

async fn fetch(app: &TestApp, path: &str) -> reqwest::Response {
    let url = format!("{}{path}", app.root);
    let response = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response
}

async fn served_json(app: &TestApp) -> Value {
    fetch(app, "/openapi.json")
        .await
        .json()
        .await
        .expect("/openapi.json is JSON")
}

// --- normalising ---------------------------------------------------------------------------

/// Keys that only annotate (and so may differ freely).
fn is_annotation(key: &str) -> bool {
    matches!(
        key,
        "description" | "summary" | "title" | "example" | "examples" | "default" | "externalDocs"
    ) || key.starts_with("x-")
}

/// Keywords whose value here is the default, so that saying it equals not saying it.
fn is_default(key: &str, value: &Value) -> bool {
    matches!(
        key,
        "deprecated" | "readOnly" | "writeOnly" | "nullable" | "uniqueItems"
    ) && value == &Value::Bool(false)
}

/// `#/components/schemas/Usage` and `#/definitions/Usage` both name `Usage`.
fn ref_name(reference: &str) -> String {
    for prefix in ["#/components/schemas/", "#/definitions/"] {
        if let Some(name) = reference.strip_prefix(prefix) {
            return name.to_string();
        }
    }
    reference.to_string()
}

/// `application/json; charset=utf-8` -> `application/json`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The schema's target when it is a reference: a bare `$ref` (siblings of `$ref` are ignored
/// by OpenAPI 3.0), or an `allOf` holding one `$ref` beside members and siblings that only
/// annotate.
fn schema_ref(schema: &Map<String, Value>) -> Option<String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return Some(ref_name(reference));
    }
    let members = schema.get("allOf")?.as_array()?;
    if schema.keys().any(|k| k != "allOf" && !is_annotation(k)) {
        return None;
    }
    let mut target = None;
    for member in members {
        let member = member.as_object()?;
        if let Some(reference) = member.get("$ref").and_then(Value::as_str) {
            if target.is_some() {
                return None;
            }
            target = Some(ref_name(reference));
        } else if !member.keys().all(|k| is_annotation(k)) {
            return None;
        }
    }
    target
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => canonical_json(other),
    }
}

/// JSON with object keys sorted, so that equal values print equally.
fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// A list as a sorted, bracketed text: `[id, name]`.
fn sorted_list(value: &Value) -> String {
    let mut items: Vec<String> = match value {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    };
    items.sort();
    format!("[{}]", items.join(", "))
}

/// Adds the facts of the schema at `key`: the node itself (`$ref X`, or its type and format),
/// then its `required` list, `enum` values, properties (`key/properties/NAME`), array items
/// (`key/items`), and any other keyword in canonical JSON.
fn flatten_schema(key: &str, schema: &Value, facts: &mut Facts) {
    let Some(object) = schema.as_object() else {
        facts.insert(key.to_string(), format!("not a schema object: {schema}"));
        return;
    };
    if let Some(target) = schema_ref(object) {
        facts.insert(key.to_string(), format!("$ref {target}"));
        return;
    }
    let mut node = match object.get("type") {
        Some(kind) => text(kind),
        None => "any".to_string(),
    };
    if let Some(format) = object.get("format") {
        node.push_str(&format!(" format={}", text(format)));
    }
    facts.insert(key.to_string(), node);
    for (keyword, value) in object {
        match keyword.as_str() {
            "type" | "format" => {}
            k if is_annotation(k) || is_default(k, value) => {}
            "properties" => match value.as_object() {
                Some(properties) => {
                    for (name, property) in properties {
                        flatten_schema(&format!("{key}/properties/{name}"), property, facts);
                    }
                }
                None => {
                    facts.insert(format!("{key} properties"), canonical_json(value));
                }
            },
            "items" | "additionalProperties" | "not" if value.is_object() => {
                flatten_schema(&format!("{key}/{keyword}"), value, facts);
            }
            "allOf" | "oneOf" | "anyOf" if value.is_array() => {
                for (i, member) in value.as_array().into_iter().flatten().enumerate() {
                    flatten_schema(&format!("{key}/{keyword}/{i}"), member, facts);
                }
            }
            "required" | "enum" => {
                facts.insert(format!("{key} {keyword}"), sorted_list(value));
            }
            _ => {
                facts.insert(format!("{key} {keyword}"), canonical_json(value));
            }
        }
    }
}

fn operation_key(method: &str, path: &str) -> String {
    format!("operation {} {path}", method.to_ascii_uppercase())
}

/// Operation-level facts both formats share: the operation itself (its operationId) and tags.
fn operation_facts(key: &str, operation: &Value, facts: &mut Facts) {
    let id = operation["operationId"].as_str().unwrap_or("(none)");
    facts.insert(key.to_string(), format!("operationId={id}"));
    if let Some(tags) = operation.get("tags") {
        facts.insert(format!("{key} tags"), sorted_list(tags));
    }
}

/// Path-level parameters overlaid by the operation's own, by (in, name).
fn parameters<'a>(item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    let mut by_place: BTreeMap<(String, String), &Value> = BTreeMap::new();
    for source in [&item["parameters"], &operation["parameters"]] {
        for parameter in source.as_array().into_iter().flatten() {
            let place = (text(&parameter["in"]), text(&parameter["name"]));
            by_place.insert(place, parameter);
        }
    }
    by_place.into_values().collect()
}

fn base_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

/// The facts of an OpenAPI 3.0 document.
fn canon_openapi3(doc: &Value) -> Facts {
    let mut facts = Facts::new();
    facts.insert("info title".into(), text(&doc["info"]["title"]));
    facts.insert("info version".into(), text(&doc["info"]["version"]));
    let servers: Vec<String> = doc["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| base_path(s["url"].as_str().unwrap_or_default()))
        .collect();
    facts.insert("base path".into(), servers.join(" "));

    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let op = operation_key(method, path);
            operation_facts(&op, operation, &mut facts);
            for parameter in parameters(item, operation) {
                let place = parameter_key(&op, parameter);
                let required = parameter["required"].as_bool().unwrap_or(false);
                facts.insert(place.clone(), format!("required={required}"));
                match parameter.get("schema") {
                    Some(schema) => flatten_schema(&format!("{place} schema"), schema, &mut facts),
                    None => {
                        facts.insert(format!("{place} schema"), "(none)".into());
                    }
                }
            }
            if let Some(body) = operation.get("requestBody") {
                let at = format!("{op} request body");
                let required = body["required"].as_bool().unwrap_or(false);
                facts.insert(at.clone(), format!("required={required}"));
                content_facts(&at, &body["content"], &mut facts);
            }
            for (code, response) in operation["responses"].as_object().into_iter().flatten() {
                let at = format!("{op} response {code}");
                facts.insert(at.clone(), "declared".into());
                content_facts(&at, &response["content"], &mut facts);
                for (name, header) in response["headers"].as_object().into_iter().flatten() {
                    let header_key = format!("{at} header {}", name.to_ascii_lowercase());
                    flatten_schema(&header_key, &header["schema"], &mut facts);
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        flatten_schema(&format!("schema {name}"), schema, &mut facts);
    }
    facts
}

/// The schema of each media type of a body, at `key media TYPE`.
fn content_facts(key: &str, content: &Value, facts: &mut Facts) {
    for (content_type, media) in content.as_object().into_iter().flatten() {
        let at = format!("{key} media {}", media_type(content_type));
        match media.get("schema") {
            Some(schema) => flatten_schema(&at, schema, facts),
            None => {
                facts.insert(at, "(no schema)".into());
            }
        }
    }
}

/// `operation M P parameter IN NAME`; header names in lower case (case-insensitive in HTTP).
fn parameter_key(op: &str, parameter: &Value) -> String {
    let place = text(&parameter["in"]);
    let mut name = text(&parameter["name"]);
    if place == "header" {
        name = name.to_ascii_lowercase();
    }
    format!("{op} parameter {place} {name}")
}

/// The facts of a swagger 2.0 document, keyed as `canon_openapi3` keys them: a `body`
/// parameter is the request body; `consumes`/`produces` are the media types of bodies.
fn canon_swagger2(doc: &Value) -> Facts {
    let mut facts = Facts::new();
    facts.insert("info title".into(), text(&doc["info"]["title"]));
    facts.insert("info version".into(), text(&doc["info"]["version"]));
    facts.insert(
        "base path".into(),
        base_path(doc["basePath"].as_str().unwrap_or("/")),
    );
    let media_types = |operation: &Value, key: &str| -> BTreeSet<String> {
        let list = operation.get(key).unwrap_or(&doc[key]);
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(media_type)
            .collect()
    };

    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let op = operation_key(method, path);
            operation_facts(&op, operation, &mut facts);
            for parameter in parameters(item, operation) {
                let required = parameter["required"].as_bool().unwrap_or(false);
                if parameter["in"] == "body" {
                    let at = format!("{op} request body");
                    facts.insert(at.clone(), format!("required={required}"));
                    for media in media_types(operation, "consumes") {
                        let key = format!("{at} media {media}");
                        flatten_schema(&key, &parameter["schema"], &mut facts);
                    }
                    continue;
                }
                let place = parameter_key(&op, parameter);
                facts.insert(place.clone(), format!("required={required}"));
                let schema: Map<String, Value> = parameter
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "name" | "in" | "required" | "collectionFormat" | "allowEmptyValue"
                        )
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                flatten_schema(
                    &format!("{place} schema"),
                    &Value::Object(schema),
                    &mut facts,
                );
            }
            for (code, response) in operation["responses"].as_object().into_iter().flatten() {
                let at = format!("{op} response {code}");
                facts.insert(at.clone(), "declared".into());
                if let Some(schema) = response.get("schema") {
                    for media in media_types(operation, "produces") {
                        flatten_schema(&format!("{at} media {media}"), schema, &mut facts);
                    }
                }
                for (name, header) in response["headers"].as_object().into_iter().flatten() {
                    let header_key = format!("{at} header {}", name.to_ascii_lowercase());
                    flatten_schema(&header_key, header, &mut facts);
                }
            }
        }
    }
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        flatten_schema(&format!("schema {name}"), schema, &mut facts);
    }
    facts
}

// --- comparing -----------------------------------------------------------------------------

/// Every fact that differs between `expected` and `actual`, one line each.
fn compare(
    expected_name: &str,
    expected: &Facts,
    actual_name: &str,
    actual: &Facts,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => differences.push(format!("missing from {actual_name}: {key} = {want}")),
            Some(got) if got != want => differences.push(format!(
                "differs at {key}: {expected_name} has `{want}`, {actual_name} has `{got}`"
            )),
            Some(_) => {}
        }
    }
    for (key, got) in actual {
        if !expected.contains_key(key) {
            differences.push(format!("only in {actual_name}: {key} = {got}"));
        }
    }
    differences
}

fn assert_no_differences(what: &str, differences: &[String]) {
    if differences.is_empty() {
        return;
    }
    const SHOWN: usize = 200;
    let mut message = format!("{what}: {} difference(s)\n", differences.len());
    for line in differences.iter().take(SHOWN) {
        message.push_str("  ");
        message.push_str(line);
        message.push('\n');
    }
    if differences.len() > SHOWN {
        message.push_str(&format!("  ... and {} more\n", differences.len() - SHOWN));
    }
    panic!("{message}");
}

/// Whether `key` is `prefix` itself or one of its sub-facts (`prefix ...`, or `prefix/...`
/// for a schema node; an operation's key ends with its path, which `/` would extend).
fn is_under(key: &str, prefix: &str) -> bool {
    let is_operation = prefix.starts_with("operation ") && prefix.matches(' ').count() == 2;
    key.strip_prefix(prefix).is_some_and(|rest| {
        rest.is_empty() || rest.starts_with(' ') || (rest.starts_with('/') && !is_operation)
    })
}

/// A fact of a validation keyword that states a rule: `... minimum`, `... enum`, ...
fn is_stated_rule(key: &str) -> bool {
    [
        " minimum",
        " maximum",
        " enum",
        " minLength",
        " maxLength",
        " pattern",
        " maxItems",
    ]
    .iter()
    .any(|rule| key.ends_with(rule))
}

fn is_extension(value: &Value) -> bool {
    value["x-tmf635-extension"] == Value::Bool(true)
}

/// The fact keys of everything a document marks `x-tmf635-extension: true`: operations,
/// parameters, request bodies and their media types, responses, their media types and headers,
/// schemas and their properties.
fn extension_prefixes(doc: &Value) -> Vec<String> {
    fn schema_prefixes(key: &str, schema: &Value, found: &mut Vec<String>) {
        if is_extension(schema) {
            found.push(key.to_string());
            return;
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            schema_prefixes(&format!("{key}/properties/{name}"), property, found);
        }
        if schema["items"].is_object() {
            schema_prefixes(&format!("{key}/items"), &schema["items"], found);
        }
    }
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let op = operation_key(method, path);
            if is_extension(operation) {
                found.push(op);
                continue;
            }
            for parameter in parameters(item, operation) {
                if is_extension(parameter) {
                    found.push(parameter_key(&op, parameter));
                }
            }
            let body = &operation["requestBody"];
            let at = format!("{op} request body");
            if is_extension(body) {
                found.push(at.clone());
            }
            for (content_type, media) in body["content"].as_object().into_iter().flatten() {
                if is_extension(media) {
                    found.push(format!("{at} media {}", media_type(content_type)));
                }
            }
            for (code, response) in operation["responses"].as_object().into_iter().flatten() {
                let at = format!("{op} response {code}");
                if is_extension(response) {
                    found.push(at);
                    continue;
                }
                for (content_type, media) in response["content"].as_object().into_iter().flatten() {
                    if is_extension(media) {
                        found.push(format!("{at} media {}", media_type(content_type)));
                    }
                }
                for (name, header) in response["headers"].as_object().into_iter().flatten() {
                    if is_extension(header) {
                        found.push(format!("{at} header {}", name.to_ascii_lowercase()));
                    }
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        schema_prefixes(&format!("schema {name}"), schema, &mut found);
    }
    found
}

/// Served facts against the official swagger's, less what `api` marks `x-tmf635-extension`
/// (each such mark must name something the official swagger does not have); returns the
/// differences and a note for each extension set aside.
fn compare_with_official(
    served: &Value,
    api: &Value,
    official: &Value,
) -> (Vec<String>, Vec<String>) {
    let official_facts = canon_swagger2(official);
    let mut served_facts = canon_openapi3(served);
    let mut differences = Vec::new();
    let mut notes = Vec::new();
    for prefix in extension_prefixes(api) {
        if official_facts.keys().any(|k| is_under(k, &prefix)) {
            differences.push(format!(
                "api/ marks `{prefix}` x-tmf635-extension, but the official swagger has it"
            ));
        }
        let before = served_facts.len();
        served_facts.retain(|k, _| !is_under(k, &prefix));
        notes.push(format!(
            "{prefix} (x-tmf635-extension; {} served fact(s))",
            before - served_facts.len()
        ));
    }
    // Rules the server states beyond the standard's types (a minimum, the values allowed, a
    // length, a pattern) narrow what the standard leaves open without renaming or retyping
    // anything; where the standard states one itself, it must be the same.
    served_facts.retain(|k, _| official_facts.contains_key(k) || !is_stated_rule(k));
    differences.extend(compare(
        "the official swagger",
        &official_facts,
        "the served spec",
        &served_facts,
    ));
    (differences, notes)
}

// --- the server's documents ----------------------------------------------------------------

#[tokio::test]
async fn served_openapi_json_is_the_api_document() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let served = served_json(&app).await;
    let api = api_document();
    let version = served["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.0."),
        "served openapi version {version:?}"
    );
    let api_facts = canon_openapi3(&api);
    let served_facts = canon_openapi3(&served);
    assert!(
        api_facts.len() > 500,
        "the normaliser sees too little of api/ ({} facts)",
        api_facts.len()
    );
    let differences = compare(
        "api/tmf635.openapi.json",
        &api_facts,
        "/openapi.json",
        &served_facts,
    );
    assert_no_differences(
        "served /openapi.json vs api/tmf635.openapi.json",
        &differences,
    );
    // Security is served as api/ declares it: the schemes, and each operation's requirement
    // and scope (the facts above leave them out).
    assert_eq!(
        served["components"]["securitySchemes"],
        api["components"]["securitySchemes"]
    );
    for (path, item) in api["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                for key in ["security", "x-tmf635-scope"] {
                    assert!(operation.get(key).is_some(), "{method} {path} has no {key}");
                    assert_eq!(
                        served["paths"][path][method][key], operation[key],
                        "{method} {path} {key}"
                    );
                }
            }
        }
    }
    // Tags in api/'s order, which is the order Swagger UI shows its groups in.
    assert_eq!(served["tags"], api["tags"], "served tags");
    // Described references as api/ writes them: generators read poem-openapi's `allOf` wrapper
    // as a composition (openapi-python-client drops every schema holding one of a non-object).
    let text = served.to_string();
    assert!(!text.contains("\"allOf\""), "the served spec has an allOf");
    println!(
        "/openapi.json equals api/tmf635.openapi.json in all {} facts",
        api_facts.len()
    );
}

#[tokio::test]
async fn served_openapi_json_matches_the_official_swagger() {
    let Some(official) = reference_document() else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let served = served_json(&app).await;
    let (differences, notes) = compare_with_official(&served, &api_document(), &official);
    for note in &notes {
        println!("set aside: {note}");
    }
    assert_no_differences(
        &format!("served /openapi.json vs the official {REFERENCE_FILE}"),
        &differences,
    );
    println!(
        "/openapi.json matches {REFERENCE_FILE} in all {} facts",
        canon_swagger2(&official).len()
    );
}

#[tokio::test]
async fn served_openapi_yaml_is_the_same_document() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let json_doc = served_json(&app).await;
    let yaml_text = fetch(&app, "/openapi.yaml")
        .await
        .text()
        .await
        .expect("/openapi.yaml has a body");
    let yaml_doc: Value = serde_yaml::from_str(&yaml_text).expect("/openapi.yaml is YAML");
    let differences = compare(
        "/openapi.json",
        &canon_openapi3(&json_doc),
        "/openapi.yaml",
        &canon_openapi3(&yaml_doc),
    );
    assert_no_differences("served /openapi.yaml vs /openapi.json", &differences);
    // Beyond the facts: the very same document, descriptions and all.
    assert!(
        yaml_doc == json_doc,
        "/openapi.yaml parses to a document other than /openapi.json (same facts, so the \
         difference is in descriptions, examples or other annotations)"
    );
}

#[tokio::test]
async fn root_redirects_to_swagger_ui() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let response = client
        .get(format!("{}/", app.root))
        .send()
        .await
        .expect("GET / answers");
    assert!(
        response.status().is_redirection(),
        "GET / answers {}",
        response.status()
    );
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(location, "/swagger-ui/", "GET / redirects to");

    let page = fetch(&app, "/swagger-ui/").await;
    let content_type = page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/html"),
        "Swagger UI content-type {content_type}"
    );
    let html = page.text().await.expect("a page");
    assert!(
        html.contains("SwaggerUIBundle"),
        "the page starts Swagger UI"
    );
}

// --- the comparison itself can fail --------------------------------------------------------

fn differences_between(expected: &Value, actual: &Value) -> Vec<String> {
    compare(
        "expected",
        &canon_openapi3(expected),
        "actual",
        &canon_openapi3(actual),
    )
}

fn assert_reported(differences: &[String], needle: &str) {
    assert!(
        differences.iter().any(|d| d.contains(needle)),
        "expected a difference mentioning {needle:?}, got {differences:#?}"
    );
}

#[test]
fn normaliser_accepts_what_legitimately_differs() {
    let api = api_document();
    let mut other = api.clone();
    other["openapi"] = json!("3.0.0");
    let usage = &mut other["components"]["schemas"]["Usage"];
    usage["description"] = json!("changed");
    // allOf wrapper (with a description member) <-> bare $ref
    usage["properties"]["status"] = json!({
        "description": "x",
        "allOf": [{"$ref": "#/components/schemas/UsageStatusType"}, {"description": "y"}]
    });
    // property order
    let properties = usage["properties"]
        .as_object()
        .expect("Usage.properties")
        .clone();
    usage["properties"] = Value::Object(properties.into_iter().rev().collect());
    let error = &mut other["components"]["schemas"]["Error"];
    let mut required = error["required"]
        .as_array()
        .expect("Error.required")
        .clone();
    required.reverse();
    error["required"] = Value::Array(required);
    // content type parameters, header case and `required`, parameter serialisation
    let list = &mut other["paths"]["/usage"]["get"];
    let ok = list["responses"]["200"].as_object_mut().expect("a 200");
    let mut content = ok.remove("content").expect("200 content");
    let content = content.as_object_mut().expect("200 content");
    let schema = content.remove("application/json").expect("200 JSON");
    content.insert("application/json; charset=utf-8".into(), schema);
    ok.insert("content".into(), Value::Object(content.clone()));
    let headers = ok.remove("headers").expect("200 headers");
    let headers: Map<String, Value> = headers
        .as_object()
        .expect("headers")
        .iter()
        .map(|(name, h)| {
            let mut h = h.clone();
            h["required"] = json!(true);
            h["deprecated"] = json!(false);
            (name.to_ascii_uppercase(), h)
        })
        .collect();
    ok.insert("headers".into(), Value::Object(headers));
    list["parameters"][0]["explode"] = json!(true);
    list["parameters"][0]["description"] = json!("other words");

    let differences = differences_between(&api, &other);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn comparison_reports_a_dropped_property() {
    let api = api_document();
    let mut other = api.clone();
    other["components"]["schemas"]["Usage"]["properties"]
        .as_object_mut()
        .expect("Usage.properties")
        .remove("usageType")
        .expect("Usage.usageType");
    let differences = differences_between(&api, &other);
    assert_eq!(differences.len(), 1, "{differences:#?}");
    assert_reported(
        &differences,
        "missing from actual: schema Usage/properties/usageType = string",
    );
}

#[test]
fn comparison_reports_a_changed_type_format_or_ref() {
    let api = api_document();
    let mut other = api.clone();
    let usage = &mut other["components"]["schemas"]["Usage"]["properties"];
    usage["usageDate"]["format"] = json!("date");
    usage["usageType"]["type"] = json!("integer");
    usage["relatedParty"]["items"]["$ref"] = json!("#/components/schemas/EntityRef");
    other["paths"]["/usage"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ["$ref"] = json!("#/components/schemas/Usage");
    let differences = differences_between(&api, &other);
    assert_eq!(differences.len(), 4, "{differences:#?}");
    assert_reported(
        &differences,
        "differs at schema Usage/properties/usageDate: expected has `string format=date-time`, \
         actual has `string format=date`",
    );
    assert_reported(
        &differences,
        "differs at schema Usage/properties/usageType: expected has `string`, actual has `integer`",
    );
    assert_reported(
        &differences,
        "differs at schema Usage/properties/relatedParty/items: expected has `$ref RelatedParty`, \
         actual has `$ref EntityRef`",
    );
    assert_reported(
        &differences,
        "differs at operation POST /usage request body media application/json: expected has \
         `$ref Usage_Create`, actual has `$ref Usage`",
    );
}

#[test]
fn comparison_reports_a_changed_required_list_or_enum() {
    let api = api_document();
    let mut other = api.clone();
    other["components"]["schemas"]["Error"]["required"] = json!(["code"]);
    other["components"]["schemas"]["UsageStatusType"]["enum"]
        .as_array_mut()
        .expect("UsageStatusType.enum")
        .pop();
    let differences = differences_between(&api, &other);
    assert_eq!(differences.len(), 2, "{differences:#?}");
    assert_reported(
        &differences,
        "differs at schema Error required: expected has `[code, reason]`, actual has `[code]`",
    );
    assert_reported(&differences, "differs at schema UsageStatusType enum");
}

#[test]
fn comparison_reports_operation_parameter_response_and_header_changes() {
    let api = api_document();
    let mut other = api.clone();
    let list = &mut other["paths"]["/usage"]["get"];
    list["operationId"] = json!("findUsages");
    list["parameters"][0]["required"] = json!(true);
    list["parameters"][1]["schema"]["type"] = json!("string");
    list["responses"]
        .as_object_mut()
        .expect("responses")
        .remove("409");
    list["responses"]["200"]["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("X-Total-Count");
    other["paths"]["/usage/{id}"]
        .as_object_mut()
        .expect("/usage/{id}")
        .remove("delete");
    let differences = differences_between(&api, &other);
    assert_reported(
        &differences,
        "differs at operation GET /usage: expected has `operationId=listUsage`, actual has \
         `operationId=findUsages`",
    );
    assert_reported(
        &differences,
        "differs at operation GET /usage parameter query fields: expected has `required=false`, \
         actual has `required=true`",
    );
    assert_reported(
        &differences,
        "differs at operation GET /usage parameter query offset schema: expected has `integer`, \
         actual has `string`",
    );
    assert_reported(
        &differences,
        "missing from actual: operation GET /usage response 409 = declared",
    );
    assert_reported(
        &differences,
        "missing from actual: operation GET /usage response 409 media application/json = $ref Error",
    );
    assert_reported(
        &differences,
        "missing from actual: operation GET /usage response 200 header x-total-count = integer",
    );
    assert_reported(
        &differences,
        "missing from actual: operation DELETE /usage/{id} = operationId=deleteUsage",
    );
}

/// A small swagger 2.0 and an OpenAPI 3.0 document equal to it but for its extensions.
fn swagger_pair() -> (Value, Value) {
    let swagger = json!({
        "swagger": "2.0",
        "info": {"title": "T", "version": "1"},
        "basePath": "/base/",
        "produces": ["application/json;charset=utf-8"],
        "consumes": ["application/json;charset=utf-8"],
        "paths": {
            "/thing": {
                "get": {
                    "operationId": "listThing", "tags": ["thing"],
                    "parameters": [{"name": "limit", "in": "query", "required": false, "type": "integer", "description": "d"}],
                    "responses": {
                        "200": {"description": "ok", "headers": {"X-Total-Count": {"type": "integer"}},
                                "schema": {"type": "array", "items": {"$ref": "#/definitions/Thing"}}},
                        "400": {"description": "bad", "schema": {"$ref": "#/definitions/Error"}}
                    }
                },
                "post": {
                    "operationId": "createThing", "tags": ["thing"],
                    "parameters": [{"name": "thing", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Thing"}}],
                    "responses": {"201": {"description": "c", "schema": {"$ref": "#/definitions/Thing"}}}
                }
            },
            "/thing/{id}": {
                "delete": {
                    "operationId": "deleteThing", "tags": ["thing"],
                    "parameters": [{"name": "id", "in": "path", "required": true, "type": "string"}],
                    "responses": {"204": {"description": "gone"}}
                }
            }
        },
        "definitions": {
            "Thing": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"},
                "when": {"type": "string", "format": "date-time", "example": "2020"},
                "parts": {"type": "array", "items": {"$ref": "#/definitions/Part"}},
                "state": {"$ref": "#/definitions/State"}
            }},
            "Part": {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}},
            "State": {"type": "string", "enum": ["a", "b"]},
            "Error": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}
        }
    });
    let json_utf8 = "application/json; charset=utf-8";
    let error = json!({json_utf8: {"schema": {"$ref": "#/components/schemas/Error"}}});
    let thing = json!({json_utf8: {"schema": {"$ref": "#/components/schemas/Thing"}}});
    let mut thing_or_patch = thing.clone();
    thing_or_patch["application/merge-patch+json"] =
        json!({"x-tmf635-extension": true, "schema": {"$ref": "#/components/schemas/Thing"}});
    let openapi = json!({
        "openapi": "3.0.0",
        "info": {"title": "T", "version": "1", "description": "other"},
        "servers": [{"url": "/base"}],
        "paths": {
            "/thing": {
                "get": {
                    "operationId": "listThing", "tags": ["thing"],
                    "parameters": [
                        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer"}, "explode": true},
                        {"name": "sort", "in": "query", "x-tmf635-extension": true, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "OK",
                                "headers": {
                                    "X-TOTAL-COUNT": {"required": true, "schema": {"type": "integer"}},
                                    "Link": {"x-tmf635-extension": true, "schema": {"type": "string"}}
                                },
                                "content": {json_utf8: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}},
                        "206": {"description": "Partial", "x-tmf635-extension": true,
                                "content": {json_utf8: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}}}},
                        "400": {"description": "Bad", "content": error}
                    }
                },
                "post": {
                    "operationId": "createThing", "tags": ["thing"],
                    "requestBody": {"required": true, "content": thing_or_patch},
                    "responses": {"201": {"description": "Created", "content": thing}}
                }
            },
            "/thing/{id}": {
                "delete": {
                    "operationId": "deleteThing", "tags": ["thing"],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "Deleted"}}
                }
            },
            "/extra": {
                "get": {
                    "operationId": "extra", "tags": ["extensions"], "x-tmf635-extension": true,
                    "responses": {"200": {"description": "OK"}}
                }
            }
        },
        "components": {"schemas": {
            "Thing": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string", "description": "the id"},
                "when": {"type": "string", "format": "date-time"},
                "parts": {"type": "array", "items": {"$ref": "#/components/schemas/Part"}},
                "state": {"allOf": [{"$ref": "#/components/schemas/State"}], "description": "s"}
            }},
            "Part": {"type": "object", "properties": {"n": {"type": "integer", "format": "int32"}}},
            "State": {"type": "string", "enum": ["b", "a"]},
            "Error": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}},
            "Extra": {"type": "object", "x-tmf635-extension": true, "properties": {"x": {"type": "string"}}}
        }}
    });
    (swagger, openapi)
}

fn official_differences(swagger: &Value, openapi: &Value) -> Vec<String> {
    compare_with_official(openapi, openapi, swagger).0
}

#[test]
fn official_comparison_accepts_the_equivalent_document_less_its_extensions() {
    let (swagger, openapi) = swagger_pair();
    let (differences, notes) = compare_with_official(&openapi, &openapi, &swagger);
    assert!(differences.is_empty(), "{differences:#?}");
    assert_eq!(
        notes,
        [
            "operation GET /thing parameter query sort (x-tmf635-extension; 2 served fact(s))",
            "operation GET /thing response 200 header link (x-tmf635-extension; 1 served fact(s))",
            "operation GET /thing response 206 (x-tmf635-extension; 3 served fact(s))",
            "operation POST /thing request body media application/merge-patch+json \
             (x-tmf635-extension; 1 served fact(s))",
            "operation GET /extra (x-tmf635-extension; 3 served fact(s))",
            "schema Extra (x-tmf635-extension; 2 served fact(s))",
        ]
    );
}

#[test]
fn official_comparison_reports_each_kind_of_difference() {
    let (swagger, openapi) = swagger_pair();

    let mut s = swagger.clone();
    s["definitions"]["Thing"]["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("when");
    assert_reported(
        &official_differences(&s, &openapi),
        "only in the served spec: schema Thing/properties/when = string format=date-time",
    );

    let mut s = swagger.clone();
    s["definitions"]["Part"]["properties"]["n"]["format"] = json!("int64");
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at schema Part/properties/n: the official swagger has `integer format=int64`, \
         the served spec has `integer format=int32`",
    );

    let mut s = swagger.clone();
    s["definitions"]["Thing"]["required"] = json!(["id", "when"]);
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at schema Thing required: the official swagger has `[id, when]`, the served \
         spec has `[id]`",
    );

    let mut s = swagger.clone();
    s["definitions"]["Thing"]["properties"]["state"] = json!({"$ref": "#/definitions/Part"});
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at schema Thing/properties/state: the official swagger has `$ref Part`",
    );

    let mut s = swagger.clone();
    s["paths"]["/thing"]["post"]["parameters"][0]["schema"]["$ref"] = json!("#/definitions/Part");
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at operation POST /thing request body media application/json: the official \
         swagger has `$ref Part`",
    );

    let mut s = swagger.clone();
    s["paths"]["/thing"]["get"]["parameters"][0]["required"] = json!(true);
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at operation GET /thing parameter query limit: the official swagger has \
         `required=true`",
    );

    let mut s = swagger.clone();
    s["paths"]["/thing"]["get"]["responses"]["404"] =
        json!({"description": "nf", "schema": {"$ref": "#/definitions/Error"}});
    assert_reported(
        &official_differences(&s, &openapi),
        "missing from the served spec: operation GET /thing response 404 = declared",
    );

    let mut s = swagger.clone();
    s["paths"]["/thing"]["get"]["responses"]["200"]["headers"]["X-Result-Count"] =
        json!({"type": "integer"});
    assert_reported(
        &official_differences(&s, &openapi),
        "missing from the served spec: operation GET /thing response 200 header x-result-count",
    );

    let mut s = swagger.clone();
    s["paths"]["/thing/{id}"]["delete"]["operationId"] = json!("removeThing");
    assert_reported(
        &official_differences(&s, &openapi),
        "differs at operation DELETE /thing/{id}: the official swagger has `operationId=removeThing`",
    );
}

#[test]
fn official_comparison_sets_aside_only_what_is_marked() {
    let (swagger, openapi) = swagger_pair();
    let unmark = |pointer: &str| {
        let mut o = openapi.clone();
        o.pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{pointer} in the pair"))
            .remove("x-tmf635-extension")
            .unwrap_or_else(|| panic!("{pointer} is marked"));
        official_differences(&swagger, &o)
    };
    assert_reported(
        &unmark("/paths/~1extra/get"),
        "only in the served spec: operation GET /extra = operationId=extra",
    );
    assert_reported(
        &unmark("/paths/~1thing/get/responses/206"),
        "only in the served spec: operation GET /thing response 206 = declared",
    );
    assert_reported(
        &unmark("/paths/~1thing/get/responses/200/headers/Link"),
        "only in the served spec: operation GET /thing response 200 header link = string",
    );
    assert_reported(
        &unmark("/paths/~1thing/get/parameters/1"),
        "only in the served spec: operation GET /thing parameter query sort = required=false",
    );
    assert_reported(
        &unmark("/paths/~1thing/post/requestBody/content/application~1merge-patch+json"),
        "only in the served spec: operation POST /thing request body media \
         application/merge-patch+json = $ref Thing",
    );
    assert_reported(
        &unmark("/components/schemas/Extra"),
        "only in the served spec: schema Extra = object",
    );

    // A mark on something the official swagger has is itself a difference.
    let mut o = openapi.clone();
    o["components"]["schemas"]["Part"]["x-tmf635-extension"] = json!(true);
    assert_reported(
        &official_differences(&swagger, &o),
        "api/ marks `schema Part` x-tmf635-extension, but the official swagger has it",
    );
}
