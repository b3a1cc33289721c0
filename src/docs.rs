//! The served API description: the spec poem-openapi derives from the generated API, completed
//! with the schemas no operation references (poem-openapi prunes those, but they are part of
//! the TMF635 document: `Entity`, `Addressable`, ...) and with the security of `api/` (its
//! schemes, each operation's requirement and scope), its tags in its order, the rules it states
//! beyond types, and its described references, as JSON and YAML, and Swagger UI on it.

use crate::generated::endpoints::AllSchemas;
use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, Response};
use poem_openapi::registry::Registry;
use poem_openapi::OpenApi;
use serde_json::{Map, Value};

/// The spec as served: `derived` (poem-openapi's JSON) plus every schema of the document.
pub fn complete_spec(derived: &str) -> Value {
    let mut spec: Value = serde_json::from_str(derived).unwrap_or_default();
    let mut registry = Registry::new();
    AllSchemas::register(&mut registry);
    let schemas = &mut spec["components"]["schemas"];
    if let Value::Object(served) = schemas {
        for (name, schema) in registry.schemas {
            if !served.contains_key(&name) {
                if let Ok(schema) = serde_json::to_value(&schema) {
                    served.insert(name, schema);
                }
            }
        }
        served.sort_keys();
    }
    add_security(&mut spec);
    add_tags(&mut spec);
    add_rules(&mut spec);
    plain_references(&mut spec);
    spec
}

/// The keywords that state a rule the handlers enforce beyond a value's type (a minimum, the
/// values allowed, a length, a pattern). The generated types carry the type only, so
/// poem-openapi leaves them out.
const RULES: [&str; 7] = [
    "minimum",
    "maximum",
    "enum",
    "minLength",
    "maxLength",
    "pattern",
    "maxItems",
];

/// The rules `api/` states on parameters and on schema properties, where the served spec has
/// the same parameter or property (found, never made: a pointer into what is there).
fn add_rules(spec: &mut Value) {
    let document = crate::api_document::document();
    let copy = |from: &Value, to: Option<&mut Value>| {
        if let Some(Value::Object(to)) = to {
            for key in RULES {
                if let Some(rule) = from.get(key) {
                    to.insert(key.into(), rule.clone());
                }
            }
        }
    };
    let escape = |token: &str| token.replace('~', "~0").replace('/', "~1");
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let at = format!("/paths/{}/{method}/parameters", escape(path));
                let served = spec.pointer_mut(&at).and_then(Value::as_array_mut);
                let same = served
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == parameter["name"] && p["in"] == parameter["in"]);
                copy(&parameter["schema"], same.and_then(|p| p.get_mut("schema")));
            }
        }
    }
    let schemas = document["components"]["schemas"].as_object();
    for (name, schema) in schemas.into_iter().flatten() {
        for (property, rules) in schema["properties"].as_object().into_iter().flatten() {
            let at = format!(
                "/components/schemas/{}/properties/{}",
                escape(name),
                escape(property)
            );
            copy(rules, spec.pointer_mut(&at));
        }
    }
}

/// A described reference as `api/` writes it, `{"$ref", "description"}`, where poem-openapi
/// writes `{"description", "allOf": [{"$ref"}, {"description"}]}`: generators read that
/// `allOf` as a composition, and openapi-python-client refuses one of a non-object (`Any`, an
/// enum) and drops every schema that holds one.
fn plain_references(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(plain) = described_reference(object) {
                *object = plain;
            }
            object.values_mut().for_each(plain_references);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_references),
        _ => {}
    }
}

/// `{"$ref", "description"}` for poem-openapi's wrapper of a described reference, else None.
fn described_reference(object: &Map<String, Value>) -> Option<Map<String, Value>> {
    let [reference, annotation] = object.get("allOf")?.as_array()?.as_slice() else {
        return None;
    };
    let reference = reference
        .as_object()
        .filter(|r| r.len() == 1)?
        .get("$ref")?;
    let only_description = |o: &Map<String, Value>| o.keys().all(|k| k == "description");
    let annotation = annotation.as_object()?;
    if !only_description(annotation) || object.keys().any(|k| k != "allOf" && k != "description") {
        return None;
    }
    let mut plain = Map::new();
    plain.insert("$ref".into(), reference.clone());
    if let Some(description) = object.get("description").or(annotation.get("description")) {
        plain.insert("description".into(), description.clone());
    }
    Some(plain)
}

/// The tags of `api/`, in its order: poem-openapi lists them sorted by name, and Swagger UI
/// shows the groups in the order of `tags`, so usages and specifications come first.
fn add_tags(spec: &mut Value) {
    if let (Some(tags), Value::Object(served)) = (crate::api_document::document().get("tags"), spec)
    {
        served.insert("tags".into(), tags.clone());
    }
}

/// The security schemes of `api/` and, on every operation, its requirement and scope
/// (`x-tmf635-scope`, the table `auth::scopes` reads), which poem-openapi does not carry over.
fn add_security(spec: &mut Value) {
    let document = crate::api_document::document();
    let schemes = &document["components"]["securitySchemes"];
    if let Value::Object(components) = &mut spec["components"] {
        components.insert("securitySchemes".into(), schemes.clone());
    }
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if let Value::Object(served) = &mut spec["paths"][path][method] {
                for key in ["security", "x-tmf635-scope"] {
                    if let Some(value) = operation.get(key) {
                        served.insert(key.into(), value.clone());
                    }
                }
            }
        }
    }
}

/// Swagger UI on the served spec: poem-openapi builds its page around its own derived spec
/// (`derived`), which is swapped for the completed one so Authorize and every schema show.
pub fn swagger_ui(page: String, derived: &str, spec: &Value) -> impl Endpoint {
    let completed = serde_json::to_string(spec).unwrap_or_default();
    let page = page.replacen(derived, &completed, 1);
    poem::Route::new().at("/", make_sync(move |_| Html(page.clone())))
}

pub fn json_endpoint(spec: &Value) -> impl Endpoint {
    let body = serde_json::to_string_pretty(spec).unwrap_or_default();
    make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(body.clone())
    })
}

pub fn yaml_endpoint(spec: &Value) -> impl Endpoint {
    let body = serde_yaml::to_string(spec).unwrap_or_default();
    make_sync(move |_| {
        Response::builder()
            .content_type("application/x-yaml")
            .body(body.clone())
    })
}
