//! The TMF630 query language of list operations: the query string is parsed into a typed tree
//! (`filter`), every attribute path is resolved against the resource's schema in `api/`
//! (`schema`), and the tree is compiled to a sea-orm condition with bound values (`sql`).
//! No text from the request ever becomes SQL.

pub mod filter;
pub mod schema;
pub mod sql;

pub use filter::{Condition, Filter, Op};

use crate::error::Error;
use crate::resource::ResourceKind;

/// Query parameters that steer the list instead of filtering it.
pub const RESERVED: &[&str] = &["fields", "offset", "limit", "sort"];

/// The attributes a `fields` parameter selects (id and href are always returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelection(pub Vec<String>);

impl FieldSelection {
    /// Parses `fields=a,b` and checks each attribute exists on the resource.
    pub fn parse(kind: ResourceKind, fields: &str) -> Result<FieldSelection, Error> {
        let mut selected = Vec::new();
        for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            schema::resolve(kind, &[field])
                .map_err(|e| Error::BadRequest(format!("fields: {e}")))?;
            selected.push(field.to_string());
        }
        Ok(FieldSelection(selected))
    }
}
