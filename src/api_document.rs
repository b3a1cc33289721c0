//! The API document (`api/tmf635.openapi.json`), embedded at build time and parsed once: the
//! query language resolves attribute paths against it, validation names what a body breaks,
//! and the served spec takes its title and description from it.

use serde_json::Value;
use std::sync::OnceLock;

pub const TEXT: &str = include_str!("../api/tmf635.openapi.json");

pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(TEXT).unwrap_or(Value::Null))
}

/// The schema named `name` in `components.schemas`.
pub fn schema(name: &str) -> Option<&'static Value> {
    document()["components"]["schemas"].get(name)
}

/// Follows `$ref` and single-member `allOf` to the schema itself.
pub fn deref(mut schema: &'static Value) -> &'static Value {
    loop {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match r
                .strip_prefix("#/components/schemas/")
                .and_then(self::schema)
            {
                Some(target) => schema = target,
                None => return schema,
            }
        } else if let Some([one]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = one;
        } else {
            return schema;
        }
    }
}

/// The methods the document defines for a request path under the base path (`/usage/42` ->
/// GET, PATCH, DELETE), for the `Allow` header of a 405.
pub fn allowed_methods(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut methods = Vec::new();
    for (template, item) in document()["paths"].as_object().into_iter().flatten() {
        let parts: Vec<&str> = template.split('/').collect();
        let matches = parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s);
        if matches {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                methods.push(method.to_ascii_uppercase());
            }
        }
    }
    methods
}
