//! Attribute paths resolved against the resource schemas of `api/tmf635.openapi.json` (embedded
//! at build time), so a filter, sort or field selection names only what the resource can hold.

use crate::api_document::{self, deref};
use crate::resource_kind::ResourceKind;
use serde_json::Value;

/// The type of the value an attribute path leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    DateTime,
    Number,
    Integer,
    Boolean,
    /// An object, or a value of any type (`Any`).
    Other,
}

/// Where a path leads: its type, and whether it passes through an array on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub ty: AttrType,
    /// Indexes into the path after which the value is an array (`relatedParty` for
    /// `relatedParty.id`), so the compiler can match one element.
    pub arrays: Vec<usize>,
}

fn scalar_type(schema: &Value) -> AttrType {
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("string"), Some("date-time")) => AttrType::DateTime,
        (Some("string"), _) => AttrType::String,
        (Some("number"), _) => AttrType::Number,
        (Some("integer"), _) => AttrType::Integer,
        (Some("boolean"), _) => AttrType::Boolean,
        _ => AttrType::Other,
    }
}

/// Resolves `path` (e.g. `["relatedParty", "id"]`) on the resource's schema.
pub fn resolve<S: AsRef<str>>(kind: ResourceKind, path: &[S]) -> Result<Resolved, String> {
    let mut schema = api_document::schema(kind.schema())
        .ok_or_else(|| format!("schema {} is missing from the API document", kind.schema()))?;
    let mut arrays = Vec::new();
    for (i, name) in path.iter().enumerate() {
        let name = name.as_ref();
        let here = deref(schema);
        let property = here["properties"].get(name).ok_or_else(|| {
            let full: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
            format!("{} has no attribute {}", kind.name(), full.join("."))
        })?;
        let mut property = deref(property);
        if property["type"] == "array" {
            arrays.push(i);
            property = deref(&property["items"]);
        }
        schema = property;
    }
    Ok(Resolved {
        ty: scalar_type(schema),
        arrays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_through_references_and_arrays() {
        let r = resolve(ResourceKind::Usage, &["relatedParty", "id"]).unwrap();
        assert_eq!(r.ty, AttrType::String);
        assert_eq!(r.arrays, vec![0]);
        let r = resolve(ResourceKind::Usage, &["usageDate"]).unwrap();
        assert_eq!(r.ty, AttrType::DateTime);
        let r = resolve(ResourceKind::UsageSpecification, &["isBundle"]).unwrap();
        assert_eq!(r.ty, AttrType::Boolean);
        assert!(resolve(ResourceKind::Usage, &["nope"]).is_err());
        assert!(resolve(ResourceKind::Usage, &["relatedParty", "nope"]).is_err());
    }
}
