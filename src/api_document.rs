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

/// The path items of the document matching a request path under the base path; a `{param}`
/// segment matches any segment but an empty one.
fn matching_paths(path: &str) -> impl Iterator<Item = (&'static String, &'static Value)> + '_ {
    document()["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(move |(template, _)| {
            let mut segments = path.trim_end_matches('/').split('/');
            let mut parts = template.split('/');
            loop {
                match (parts.next(), segments.next()) {
                    (None, None) => return true,
                    (Some(t), Some(s)) if (t.starts_with('{') && !s.is_empty()) || t == s => {}
                    _ => return false,
                }
            }
        })
}

/// (method, path template, operation) of every operation in the document.
pub fn operations() -> impl Iterator<Item = (&'static str, &'static str, &'static Value)> {
    document()["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(template, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .map(move |(method, operation)| (method.as_str(), template.as_str(), operation))
        })
}

/// The operation the document defines for `method` (lower or upper case) on a request path
/// under the base path; a literal segment wins over a template one (`/listener/event` over
/// `/listener/{x}`).
pub fn operation(method: &str, path: &str) -> Option<&'static Value> {
    let method = method.to_ascii_lowercase();
    matching_paths(path)
        .filter_map(|(template, item)| Some((template, item.get(method.as_str())?)))
        .min_by_key(|(template, _)| template.matches('{').count())
        .map(|(_, operation)| operation)
}

/// The methods the document defines for a request path under the base path (`/usage/42` ->
/// GET, PATCH, DELETE), for the `Allow` header of a 405.
pub fn allowed_methods(path: &str) -> Vec<String> {
    matching_paths(path)
        .flat_map(|(_, item)| item.as_object().into_iter().flatten())
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect()
}

/// The operationId the document gives `method` on a request path under the base path
/// (`GET /usage/42` -> `retrieveUsage`); None when it defines none.
pub fn operation_id(method: &str, path: &str) -> Option<&'static str> {
    operation(method, path)?["operationId"].as_str()
}
