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
