//! When a filter can use the array-value index (`store::array_index`): an equality on an
//! indexed array attribute (`relatedParty.id=P` or `=P,Q`) becomes
//! `id IN (SELECT usage_id FROM usage_array_value WHERE tenant = .. AND path = .. AND value IN
//! (..) AND <usageDate conditions>)`, an index range scan instead of a JSON walk over every row.
//! When nothing else is asked (only usageDate conditions beside it), the index alone answers
//! the count (`IndexCount`), and, sorted by usageDate, the page too (`IndexScan`).
//!
//! The same probe can also be written as `EXISTS (... WHERE usage_id = usage.id ...)`, a
//! lookup per row, for a list that walks the table in its order (newest first) and stops at
//! the page's end: cheaper than reading every match when the value is common (`walk`).

use super::compile::{push_comparison, Resolved};
use super::sql::Sql;
use super::{Op, SortKey};
use crate::store::resource::{IndexCount, IndexScan};
use crate::store::{Table, Tenant};
use sea_orm::DatabaseBackend;

/// The name of the date attribute the index rows carry (as column `usage_date`, the same name
/// as the usage table's column, so its comparisons compile the same in both places).
const DATE: &str = "usageDate";

pub(super) struct Probe {
    /// The condition the index answers.
    member: usize,
    /// No other condition is on the same array, so the index answers it alone and its EXISTS
    /// is not needed (otherwise the EXISTS still checks that one element matches them all).
    pub replaces_exists: bool,
    /// The usageDate conditions, applied in the index scan as well.
    dates: Vec<usize>,
    /// Whose index rows are probed.
    tenant: Tenant,
}

impl Probe {
    /// Conditions the probe answers entirely (they need no other SQL).
    pub fn answers(&self, i: usize) -> bool {
        i == self.member && self.replaces_exists
    }
}

pub(super) fn plan<T: Table>(resolved: &[Resolved], tenant: &Tenant) -> Option<Probe> {
    let member = resolved.iter().position(|c| {
        c.condition.op == Op::Eq
            && c.arrays == [0]
            && T::INDEXED_ARRAY_PATHS.contains(&c.condition.path.join(".").as_str())
    })?;
    let array = &resolved[member].condition.path[0];
    let replaces_exists = resolved
        .iter()
        .enumerate()
        .all(|(i, c)| i == member || c.condition.path.first() != Some(array));
    let dates = resolved
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.condition.path == [DATE]
                && T::column(DATE).is_some()
                && matches!(c.condition.op, Op::Eq | Op::Gt | Op::Gte | Op::Lt | Op::Lte)
        })
        .map(|(i, _)| i)
        .collect();
    Some(Probe {
        member,
        replaces_exists,
        dates,
        tenant: tenant.clone(),
    })
}

/// Appends `"id" IN (SELECT "usage_id" FROM "usage_array_value" WHERE ...)`.
pub(super) fn push_in<T: Table>(sql: &mut Sql, probe: &Probe, resolved: &[Resolved]) {
    sql.push("\"id\" IN (SELECT \"usage_id\" FROM \"usage_array_value\" WHERE ");
    push_where::<T>(sql, probe, resolved);
    sql.push(")");
}

/// Appends `EXISTS (SELECT 1 FROM "usage_array_value" WHERE "tenant" = "usage"."tenant" AND
/// "usage_id" = "usage"."id" AND ...)`: the primary key `(tenant, usage_id, path, value)`
/// answers it for one row. The usageDate conditions are left to the row itself.
pub(super) fn push_exists<T: Table>(sql: &mut Sql, probe: &Probe, resolved: &[Resolved]) {
    let table = T::default().table_name().to_string();
    sql.push(&format!(
        "EXISTS (SELECT 1 FROM \"usage_array_value\" WHERE \"usage_array_value\".\"tenant\" = \"{table}\".\"tenant\" AND \"usage_array_value\".\"usage_id\" = \"{table}\".\"id\" AND "
    ));
    push_value_match(sql, probe, resolved);
    sql.push(")");
}

/// The tenant's index rows of the value, and the usageDate conditions.
fn push_where<T: Table>(sql: &mut Sql, probe: &Probe, resolved: &[Resolved]) {
    sql.push("\"usage_array_value\".\"tenant\" = ")
        .bind(probe.tenant.as_str().to_string())
        .push(" AND ");
    push_value_match(sql, probe, resolved);
    for &d in &probe.dates {
        sql.push(" AND ");
        push_comparison::<T>(sql, &super::sql::Context::Document, 0, &resolved[d]);
    }
}

/// `"path" = .. AND "value" IN (..)`.
fn push_value_match(sql: &mut Sql, probe: &Probe, resolved: &[Resolved]) {
    let c = &resolved[probe.member];
    sql.push("\"path\" = ")
        .bind(c.condition.path.join("."))
        .push(" AND \"value\" IN (");
    for (i, v) in c.values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v.clone());
    }
    sql.push(")");
}

/// The index count that answers the list's total, if the probe answers the whole filter: its
/// own condition alone, every other condition a usageDate condition it applies.
pub(super) fn index_count<T: Table>(
    probe: &Probe,
    resolved: &[Resolved],
    backend: DatabaseBackend,
) -> Option<IndexCount> {
    let covered = probe.replaces_exists
        && (0..resolved.len()).all(|i| i == probe.member || probe.dates.contains(&i));
    if !covered {
        return None;
    }
    let mut sql = Sql::new(backend);
    push_where::<T>(&mut sql, probe, resolved);
    Some(IndexCount {
        condition: sql.into_expr(),
        // The table's primary key is (usage id, path, value): one value, one row per usage.
        one_row_per_resource: resolved[probe.member].values.len() == 1,
    })
}

/// The index scan that answers the whole list, if the filter and sort allow it: the index
/// answers the count (`index_count`), at least one usageDate condition is applied (so rows
/// without a date, which would sort differently, are excluded), and the list is sorted by
/// usageDate only.
pub(super) fn index_scan<T: Table>(
    probe: &Probe,
    resolved: &[Resolved],
    sort: &[SortKey],
    backend: DatabaseBackend,
) -> Option<IndexScan> {
    let descending = match sort {
        [key] if key.path == [DATE] => key.descending,
        _ => return None,
    };
    if probe.dates.is_empty() {
        return None;
    }
    Some(IndexScan {
        count: index_count::<T>(probe, resolved, backend)?,
        descending,
    })
}
