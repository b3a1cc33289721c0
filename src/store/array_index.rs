//! The array-value index (`usage_array_value`): the string values of a few array attributes of
//! each usage (`relatedParty.id`, `ratedProductUsage.productRef.id`), one row per distinct
//! value, with the usage's `usageDate`. It lets a filter on such a value plus a date range, sorted
//! by date, be answered by one index range scan; `query::compile` decides when to use it.
//! Rows are written in the same transaction as the usage, so the index never lags the documents.

use super::tables::instant;
use super::Table;
use chrono::{DateTime, Utc};
use entity::usage_array_value as row;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The distinct (path, value) pairs of `paths` in a document. A path's first key names the
/// array, the rest the string inside each element (`relatedParty.id`).
pub fn values(paths: &[&str], document: &Map<String, Value>) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for path in paths {
        let mut keys = path.split('.');
        let Some(Value::Array(elements)) = keys.next().and_then(|array| document.get(array)) else {
            continue;
        };
        let inner: Vec<&str> = keys.collect();
        for element in elements {
            let value = inner.iter().try_fold(element, |v, key| v.get(key));
            if let Some(Value::String(s)) = value {
                found.insert((path.to_string(), s.clone()));
            }
        }
    }
    found
}

/// The index rows of one usage document of `tenant` (also used to bulk-load benchmarks).
pub fn rows(
    paths: &[&str],
    tenant: &str,
    id: &str,
    document: &Map<String, Value>,
) -> Vec<row::ActiveModel> {
    let usage_date = instant(document, "usageDate");
    values(paths, document)
        .into_iter()
        .map(|(path, value)| row::ActiveModel {
            tenant: Set(tenant.to_string()),
            usage_id: Set(id.to_string()),
            path: Set(path),
            value: Set(value),
            usage_date: Set(usage_date),
        })
        .collect()
}

/// What a document's rows are made of: its indexed values and its date.
type Key = (BTreeSet<(String, String)>, Option<DateTime<Utc>>);

fn key(paths: &[&str], document: &Map<String, Value>) -> Key {
    (values(paths, document), instant(document, "usageDate"))
}

/// Brings the rows of resource `id` of `tenant` from `old` to `new` (None: absent). Writes
/// nothing when neither the indexed values nor the date changed (a status PATCH costs no
/// index write).
pub(super) async fn write<T: Table>(
    txn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> Result<(), DbErr> {
    let paths = T::INDEXED_ARRAY_PATHS;
    if paths.is_empty() {
        return Ok(());
    }
    let before = old.map(|d| key(paths, d));
    if before == new.map(|d| key(paths, d)) {
        return Ok(());
    }
    if before.is_some_and(|(values, _)| !values.is_empty()) {
        row::Entity::delete_many()
            .filter(row::Column::Tenant.eq(tenant))
            .filter(row::Column::UsageId.eq(id))
            .exec(txn)
            .await?;
    }
    if let Some(document) = new {
        let rows = rows(paths, tenant, id, document);
        if !rows.is_empty() {
            row::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}
