//! The served API description: the spec poem-openapi derives from the generated API, completed
//! with the schemas no operation references (poem-openapi prunes those, but they are part of
//! the TMF635 document: `Entity`, `Addressable`, ...), as JSON and YAML.

use crate::generated::endpoints::AllSchemas;
use poem::endpoint::make_sync;
use poem::{Endpoint, Response};
use poem_openapi::registry::Registry;
use poem_openapi::OpenApi;
use serde_json::Value;

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
    spec
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
