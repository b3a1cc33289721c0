//! Which scope each operation needs. The table is `api/`: every operation names its scope in
//! `x-tmf635-scope`, so the served spec, Swagger UI and this check can never disagree.

use crate::api_document;
use poem::http::Method;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Every scope the operations use, e.g. `usage.read`.
pub fn all() -> &'static BTreeSet<String> {
    static ALL: OnceLock<BTreeSet<String>> = OnceLock::new();
    ALL.get_or_init(|| {
        api_document::operations()
            .map(|(_, _, operation)| operation["x-tmf635-scope"].as_str())
            .map(|scope| scope.unwrap_or_default().to_string())
            .collect()
    })
}

/// The scope the operation at `path` (under the base path) with `method` needs; None where no
/// operation is (the router answers 404 or 405 there, and nothing is read or written).
pub fn required(method: &Method, path: &str) -> Option<&'static str> {
    let method = if method == Method::HEAD {
        "get"
    } else {
        method.as_str()
    };
    api_document::operation(method, path)?["x-tmf635-scope"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_names_a_known_scope_and_requires_both_schemes() {
        let known = [
            "usage.read",
            "usage.write",
            "usageSpecification.read",
            "usageSpecification.write",
            "hub.manage",
            "listener.write",
        ];
        let mut count = 0;
        for (method, template, operation) in api_document::operations() {
            let scope = operation["x-tmf635-scope"].as_str().unwrap_or_default();
            assert!(
                known.contains(&scope),
                "{method} {template}: scope {scope:?}"
            );
            assert_eq!(
                operation["security"],
                serde_json::json!([{"bearerAuth": []}, {"apiKey": []}]),
                "{method} {template}"
            );
            count += 1;
        }
        assert!(count >= 24, "{count} operations");
        assert_eq!(all().len(), known.len());
    }

    #[test]
    fn requests_resolve_to_their_operation_scope() {
        let cases = [
            (Method::GET, "/usage", Some("usage.read")),
            (Method::HEAD, "/usage/1", Some("usage.read")),
            (Method::PATCH, "/usage/1", Some("usage.write")),
            (
                Method::POST,
                "/usageSpecification",
                Some("usageSpecification.write"),
            ),
            (
                Method::GET,
                "/usageSpecification/x",
                Some("usageSpecification.read"),
            ),
            (Method::DELETE, "/hub/1", Some("hub.manage")),
            (Method::POST, "/hub/1/redrive", Some("hub.manage")),
            (
                Method::POST,
                "/listener/usageCreateEvent",
                Some("listener.write"),
            ),
            (Method::GET, "/listener/event", Some("hub.manage")),
            (Method::GET, "/nothing", None),
            (Method::PUT, "/usage/1", None),
            (Method::GET, "/usage/", Some("usage.read")),
        ];
        for (method, path, scope) in cases {
            assert_eq!(required(&method, path), scope, "{method} {path}");
        }
    }
}
