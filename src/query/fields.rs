//! `fields=relatedParty.id,usageDate`: which attributes a response keeps (id and href always).

use super::schema;
use crate::error::Error;
use crate::resource_kind::ResourceKind;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The selected attribute paths as a tree: a leaf keeps the whole value below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelection {
    children: BTreeMap<String, FieldSelection>,
}

impl FieldSelection {
    /// Parses `fields=a,b.c` and checks each path exists on the resource.
    pub fn parse(kind: ResourceKind, fields: &str) -> Result<FieldSelection, Error> {
        let mut root = FieldSelection::default();
        for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let path: Vec<&str> = field.split('.').collect();
            schema::resolve(kind, &path).map_err(|e| Error::BadRequest(format!("fields: {e}")))?;
            let mut node = &mut root;
            for key in path {
                node = node.children.entry(key.to_string()).or_default();
            }
        }
        Ok(root)
    }

    /// Keeps only the selected attributes of `document` (plus id and href), through arrays.
    pub fn project(&self, document: Map<String, Value>) -> Map<String, Value> {
        document
            .into_iter()
            .filter_map(|(key, value)| {
                if key == "id" || key == "href" {
                    return Some((key, value));
                }
                let node = self.children.get(&key)?;
                Some((key, node.project_value(value)))
            })
            .collect()
    }

    fn project_value(&self, value: Value) -> Value {
        if self.children.is_empty() {
            return value;
        }
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| self.children.get(&k).map(|n| (k, n.project_value(v))))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.project_value(v)).collect())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_selection_goes_through_arrays() {
        let selection =
            FieldSelection::parse(ResourceKind::Usage, "relatedParty.id,usageDate").unwrap();
        let doc = json!({"id": "1", "href": "h", "usageDate": "d", "status": "rated",
            "relatedParty": [{"id": "p", "role": "customer"}]});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        assert_eq!(
            Value::Object(selection.project(doc)),
            json!({"id": "1", "href": "h", "usageDate": "d", "relatedParty": [{"id": "p"}]})
        );
    }
}
