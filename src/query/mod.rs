//! The TMF630 query language of list operations: the query string is parsed into a typed tree
//! (`filter`, `sort`, `fields`), every attribute path is resolved against the resource's schema
//! in `api/` (`schema`), and the tree is compiled to SQL with bound values (`compile`, `sql`).
//! No text from the request ever becomes SQL.

pub mod array_groups;
pub mod compile;
pub mod fields;
pub mod filter;
mod index_probe;
pub mod schema;
pub mod sort;
pub mod sql;

pub use fields::FieldSelection;
pub use filter::{Condition, Filter, Op};
pub use sort::SortKey;

/// Query parameters that steer the list instead of filtering it.
pub const RESERVED: &[&str] = &["fields", "offset", "limit", "sort"];
