//! Compiles a parsed filter into one SQL condition for a resource table.
//!
//! - a first-level attribute with a typed column uses the column (and its index);
//! - any other path reads the JSON document;
//! - a path through an array becomes `EXISTS (... elements of the array ...)`, and all the
//!   conditions of one request on the same array share one EXISTS, so one element must match
//!   all of them (`relatedParty.id=42&relatedParty.role=customer`);
//! - values compare by the attribute's type in the schema: date-times as instants, numbers as
//!   numbers, booleans as booleans, the rest as text.

use super::array_groups::{self, ArrayPath, Group};
use super::index_probe;
use super::schema::{self, AttrType};
use super::sql::{push_array_elements, push_pg_json, push_scalar, Context, Sql};
use super::{Condition, Filter, Op, SortKey};
use crate::error::Error;
use crate::store::resource::{IndexCount, IndexScan};
use crate::store::{Table, TenantStore};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sea_orm::sea_query::{Condition as SqlCondition, SimpleExpr};
use sea_orm::{DatabaseBackend, IdenStatic, Value};

/// A condition resolved against the schema, with its values parsed by type.
impl ArrayPath for Resolved<'_> {
    fn path(&self) -> &[String] {
        &self.condition.path
    }
    fn arrays(&self) -> &[usize] {
        &self.arrays
    }
}

pub(super) struct Resolved<'a> {
    pub condition: &'a Condition,
    pub ty: AttrType,
    /// Path indexes after which the value is an array.
    pub arrays: Vec<usize>,
    pub values: Vec<Value>,
}

/// A filter as SQL: the condition on the resource table, and, when the filter can use the
/// array-value index, the other ways to answer it (see `index_probe`).
pub struct Compiled {
    /// Drives from the array-value index when it can (`id IN (...)`).
    pub condition: SqlCondition,
    /// The same filter checked row by row (`EXISTS (...)`), for a walk in the list's order.
    pub walk: Option<SqlCondition>,
    /// The index alone counts the matches.
    pub index_count: Option<IndexCount>,
    /// The index alone answers count and page.
    pub index_scan: Option<IndexScan>,
}

/// Compiles for the tenant of `store`: the array-value index is probed for its rows only (the
/// store adds the tenant's condition to everything else, see `TenantStore::list`).
pub fn compile<T: Table>(
    filter: &Filter,
    sort: &[SortKey],
    store: &TenantStore,
) -> Result<Compiled, Error> {
    let backend = store.backend();
    let resolved = filter
        .conditions
        .iter()
        .map(|c| resolve::<T>(c, backend))
        .collect::<Result<Vec<_>, _>>()?;
    let probe = index_probe::plan::<T>(&resolved, store.tenant());
    let index_scan = probe
        .as_ref()
        .and_then(|p| index_probe::index_scan::<T>(p, &resolved, sort, backend));
    let rest: Vec<&Resolved> = resolved
        .iter()
        .enumerate()
        .filter(|(i, _)| !probe.as_ref().is_some_and(|p| p.answers(*i)))
        .map(|(_, c)| c)
        .collect();
    // The filter with the probe, if any, in the form `push_probe` writes.
    let condition = |push_probe: fn(&mut Sql, &index_probe::Probe, &[Resolved])| {
        let mut sql = Sql::new(backend);
        if let Some(probe) = &probe {
            push_probe(&mut sql, probe, &resolved);
            if !rest.is_empty() {
                sql.push(" AND ");
            }
        }
        if !rest.is_empty() {
            let mut aliases = 0;
            push_group::<T>(&mut sql, &Context::Document, 0, &rest, &mut aliases);
        }
        if sql.text.is_empty() {
            SqlCondition::all()
        } else {
            SqlCondition::all().add(sql.into_expr())
        }
    };
    Ok(Compiled {
        condition: condition(index_probe::push_in::<T>),
        walk: probe
            .as_ref()
            .map(|_| condition(index_probe::push_exists::<T>)),
        index_count: probe
            .as_ref()
            .and_then(|p| index_probe::index_count::<T>(p, &resolved, backend)),
        index_scan,
    })
}

fn bad(condition: &Condition, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("filter {}: {why}", condition.path.join(".")))
}

fn resolve<'a, T: Table>(
    condition: &'a Condition,
    backend: DatabaseBackend,
) -> Result<Resolved<'a>, Error> {
    let found = schema::resolve(T::KIND, &condition.path).map_err(|e| bad(condition, e))?;
    let values = condition
        .values
        .iter()
        .map(|raw| typed_value(raw, found.ty, condition.op, backend).map_err(|e| bad(condition, e)))
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() != 1 && condition.op != Op::Eq && condition.op != Op::Ne {
        return Err(bad(condition, "this operator takes exactly one value"));
    }
    if condition.op == Op::Regex {
        if !matches!(found.ty, AttrType::String | AttrType::Other) {
            return Err(bad(condition, "regex applies to text attributes only"));
        }
        check_portable_regex(&condition.values[0]).map_err(|e| bad(condition, e))?;
    }
    Ok(Resolved {
        condition,
        ty: found.ty,
        arrays: found.arrays,
        values,
    })
}

/// Appends `(c1 AND c2 ...)` for conditions whose paths start at `depth` under `context`.
/// Conditions that cross an array next are grouped by that array into one EXISTS
/// (`array_groups`).
fn push_group<T: Table>(
    sql: &mut Sql,
    context: &Context,
    depth: usize,
    conditions: &[&Resolved],
    aliases: &mut usize,
) {
    sql.push("(");
    let mut first = true;
    let mut and = |sql: &mut Sql| {
        if !std::mem::take(&mut first) {
            sql.push(" AND ");
        }
    };
    for part in array_groups::group(depth, conditions) {
        and(sql);
        match part {
            Group::Plain(c) => push_comparison::<T>(sql, context, depth, c),
            Group::Element {
                array_at,
                prefix,
                members,
            } => {
                *aliases += 1;
                let alias = format!("e{aliases}");
                sql.push("EXISTS (SELECT 1 FROM ");
                push_array_elements(sql, context, &prefix[depth..], &alias);
                sql.push(" WHERE ");
                push_group::<T>(
                    sql,
                    &Context::Element(alias),
                    array_at + 1,
                    &members,
                    aliases,
                );
                sql.push(")");
            }
        }
    }
    if first {
        sql.push("1 = 1");
    }
    sql.push(")");
}

/// Appends the comparison of one condition whose path (from `depth`) crosses no array.
pub(super) fn push_comparison<T: Table>(
    sql: &mut Sql,
    context: &Context,
    depth: usize,
    c: &Resolved,
) {
    let path = &c.condition.path[depth..];
    let column = match (context, path) {
        (Context::Document, [attribute]) => T::column(attribute),
        _ => None,
    };
    // The left-hand side, written once per use (it may be needed twice, e.g. for IS NULL).
    let left = |sql: &mut Sql| match column {
        Some(column) => {
            sql.push(&format!("\"{}\"", column.as_str()));
        }
        None => push_typed(sql, context, path, c.ty),
    };
    // SQLite reads JSON date-times through julianday(); the value must be read the same way.
    let julian = !sql.is_postgres() && column.is_none() && c.ty == AttrType::DateTime;
    let right = |sql: &mut Sql, value: &Value| {
        if julian {
            sql.push("julianday(").bind(value.clone()).push(")");
        } else {
            sql.bind(value.clone());
        }
    };
    let negated = c.condition.op == Op::Ne;
    if negated {
        sql.push("(");
        left(sql);
        sql.push(" IS NULL OR NOT ");
    }
    sql.push("(");
    match c.condition.op {
        Op::Eq | Op::Ne => {
            left(sql);
            sql.push(" IN (");
            for (i, v) in c.values.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                right(sql, v);
            }
            sql.push(")");
        }
        Op::Regex => {
            left(sql);
            sql.push(if sql.is_postgres() { " ~ " } else { " REGEXP " });
            sql.bind(c.values[0].clone());
        }
        op => {
            left(sql);
            sql.push(match op {
                Op::Gt => " > ",
                Op::Gte => " >= ",
                Op::Lt => " < ",
                _ => " <= ",
            });
            right(sql, &c.values[0]);
        }
    }
    sql.push(")");
    if negated {
        sql.push(")");
    }
}

/// Appends the JSON value at `path` converted so that it compares by `ty`.
pub(super) fn push_typed(sql: &mut Sql, context: &Context, path: &[String], ty: AttrType) {
    if sql.is_postgres() {
        let cast = match ty {
            AttrType::Number | AttrType::Integer => Some(("number", "double precision")),
            AttrType::DateTime => Some(("string", "timestamptz")),
            _ => None,
        };
        match cast {
            // Cast only what has the right JSON type, so odd data never fails the query.
            Some((json_type, sql_type)) => {
                sql.push("(CASE WHEN jsonb_typeof(");
                push_pg_json(sql, context, path);
                sql.push(&format!(") = '{json_type}' THEN CAST("));
                push_scalar(sql, context, path);
                sql.push(&format!(" AS {sql_type}) END)"));
            }
            None => push_scalar(sql, context, path),
        }
    } else {
        match ty {
            // Any offset: compare as instants.
            AttrType::DateTime => {
                sql.push("julianday(");
                push_scalar(sql, context, path);
                sql.push(")");
            }
            AttrType::Other => {
                sql.push("CAST(");
                push_scalar(sql, context, path);
                sql.push(" AS TEXT)");
            }
            _ => push_scalar(sql, context, path),
        }
    }
}

/// A regex that means the same to SQLite's REGEXP (Rust's regex crate) and PostgreSQL's `~`:
/// valid, with no `(?...)` groups and only the escapes both read alike (`\d \w \s`, their
/// negations, and escaped punctuation).
pub(crate) fn check_portable_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?;
    if pattern.contains("(?") {
        return Err("regex groups of the form (?...) are not supported".into());
    }
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) if "dDwWsS".contains(e) || e.is_ascii_punctuation() => {}
                Some(e) => return Err(format!("the regex escape \\{e} is not supported")),
                None => return Err("the regex ends with a lone backslash".into()),
            }
        }
    }
    Ok(())
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    // An unencoded `+01:00` offset arrives as ` 01:00`; take it as meant.
    if let Ok(t) = DateTime::parse_from_rfc3339(s)
        .or_else(|e| DateTime::parse_from_rfc3339(&s.replace(' ', "+")).map_err(|_| e))
    {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is not a date-time (RFC 3339, e.g. 2024-05-01T10:00:00Z)"))
}

/// A filter value as the SQL value it is compared with.
fn typed_value(raw: &str, ty: AttrType, op: Op, backend: DatabaseBackend) -> Result<Value, String> {
    if op == Op::Regex {
        return Ok(raw.to_string().into());
    }
    Ok(match ty {
        AttrType::DateTime => {
            let t = parse_instant(raw)?;
            match backend {
                DatabaseBackend::Postgres => t.into(),
                // Typed columns hold sqlx's RFC 3339 text and JSON values go through julianday;
                // this spelling compares right with both.
                _ => t.to_rfc3339_opts(SecondsFormat::AutoSi, false).into(),
            }
        }
        AttrType::Number | AttrType::Integer => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{raw:?} is not a number"))?
            .into(),
        AttrType::Boolean => {
            let b = match raw {
                "true" => true,
                "false" => false,
                _ => return Err(format!("{raw:?} is not a boolean (true or false)")),
            };
            match backend {
                // `->>` answers JSON booleans as text; json_extract as 1 and 0.
                DatabaseBackend::Postgres => b.to_string().into(),
                _ => i32::from(b).into(),
            }
        }
        AttrType::String | AttrType::Other => raw.to_string().into(),
    })
}

/// The SQL expression of a path with no array, typed for ordering (used by `sort`).
pub(super) fn typed_expr<T: Table>(
    path: &[String],
    ty: AttrType,
    backend: DatabaseBackend,
) -> SimpleExpr {
    if let [attribute] = path {
        if let Some(column) = T::column(attribute) {
            return sea_orm::sea_query::Expr::col(column).into();
        }
    }
    let mut sql = Sql::new(backend);
    push_typed(&mut sql, &Context::Document, path, ty);
    sql.into_expr()
}
