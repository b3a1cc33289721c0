//! `sort=-usageDate,usageType`: keys resolved against the schema, each ascending or (with `-`)
//! descending; the id always breaks ties so paging through a sorted list is stable.

use super::compile::typed_expr;
use super::schema;
use crate::error::Error;
use crate::resource_kind::ResourceKind;
use crate::store::Table;
use sea_orm::sea_query::{NullOrdering, Order, SimpleExpr};
use sea_orm::DatabaseBackend;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub path: Vec<String>,
    pub descending: bool,
}

/// Parses the `sort` parameter; every key must name an attribute outside arrays.
pub fn parse(kind: ResourceKind, sort: &str) -> Result<Vec<SortKey>, Error> {
    let mut keys = Vec::new();
    for key in sort.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        // `+` arrives as a space when the client did not encode it.
        let (descending, name) = match key.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, key.trim_start_matches('+')),
        };
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        let resolved =
            schema::resolve(kind, &path).map_err(|e| Error::BadRequest(format!("sort: {e}")))?;
        if !resolved.arrays.is_empty() {
            return Err(Error::BadRequest(format!(
                "sort: {name} is inside an array; sort on an attribute with one value per {}",
                kind.name()
            )));
        }
        keys.push(SortKey { path, descending });
    }
    Ok(keys)
}

/// The ORDER BY terms: the keys (absent values last, on both backends), then the id.
pub fn order_terms<T: Table>(
    keys: &[SortKey],
    backend: DatabaseBackend,
) -> Vec<(SimpleExpr, Order, NullOrdering)> {
    let mut terms: Vec<(SimpleExpr, Order, NullOrdering)> = keys
        .iter()
        .map(|key| {
            let ty = schema::resolve(T::KIND, &key.path)
                .map(|r| r.ty)
                .unwrap_or(schema::AttrType::Other);
            let order = if key.descending {
                Order::Desc
            } else {
                Order::Asc
            };
            (
                typed_expr::<T>(&key.path, ty, backend),
                order,
                NullOrdering::Last,
            )
        })
        .collect();
    // The id runs the way of the last key, so `-usageDate` pages walk an index on
    // (usage_date, id) backwards with no sort step.
    let id_order = match keys.last() {
        Some(key) if key.descending => Order::Desc,
        _ => Order::Asc,
    };
    terms.push((
        sea_orm::sea_query::Expr::col(T::id_column()).into(),
        id_order,
        NullOrdering::Last,
    ));
    terms
}
