//! Compiles a parsed filter into a sea-orm condition for one resource table. Attributes with a
//! typed column use it (and its index); others are read from the JSON document with the
//! backend's JSON operator. Paths and values are bound parameters.

use super::schema::{self, AttrType};
use super::{Condition, Filter, Op};
use crate::error::Error;
use crate::store::Table;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Condition as SqlCondition, Expr, SimpleExpr};
use sea_orm::{DatabaseBackend, Value};

pub fn compile<T: Table>(filter: &Filter, backend: DatabaseBackend) -> Result<SqlCondition, Error> {
    let mut all = SqlCondition::all();
    for condition in &filter.conditions {
        all = all.add(compile_condition::<T>(condition, backend)?);
    }
    Ok(all)
}

fn bad(condition: &Condition, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("filter {}: {why}", condition.path.join(".")))
}

fn compile_condition<T: Table>(
    condition: &Condition,
    backend: DatabaseBackend,
) -> Result<SqlCondition, Error> {
    let resolved = schema::resolve(T::KIND, &condition.path).map_err(|e| bad(condition, e))?;
    if condition.path.len() > 1 || !resolved.arrays.is_empty() {
        return Err(bad(
            condition,
            "filtering on nested attributes is not supported yet",
        ));
    }
    let attribute = &condition.path[0];
    let (left, ty) = match T::column(attribute) {
        Some(column) => (Expr::col(column).into(), resolved.ty),
        None => json_attribute(attribute, resolved.ty, backend),
    };
    let values = condition
        .values
        .iter()
        .map(|v| typed_value(v, ty, backend).map_err(|e| bad(condition, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let single = || match values.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(bad(condition, "this operator takes exactly one value")),
    };
    let left = Expr::expr(left);
    Ok(match condition.op {
        Op::Eq => SqlCondition::all().add(left.is_in(values)),
        Op::Ne => SqlCondition::any()
            .add(left.clone().is_null())
            .add(left.is_not_in(values)),
        Op::Gt => SqlCondition::all().add(left.gt(single()?)),
        Op::Gte => SqlCondition::all().add(left.gte(single()?)),
        Op::Lt => SqlCondition::all().add(left.lt(single()?)),
        Op::Lte => SqlCondition::all().add(left.lte(single()?)),
        Op::Regex => return Err(bad(condition, "regex is not supported yet")),
    })
}

/// The SQL expression reading a first-level attribute from the document, and the type its
/// values compare as.
fn json_attribute(
    attribute: &str,
    ty: AttrType,
    backend: DatabaseBackend,
) -> (SimpleExpr, AttrType) {
    match backend {
        DatabaseBackend::Postgres => {
            let text = "(\"document\" ->> $1)".to_string();
            let expr = match ty {
                AttrType::Number | AttrType::Integer => format!("CAST({text} AS DOUBLE PRECISION)"),
                _ => text,
            };
            (Expr::cust_with_values(expr, [attribute.to_string()]), ty)
        }
        _ => (
            Expr::cust_with_values(
                "json_extract(\"document\", ?)",
                [format!("$.\"{attribute}\"")],
            ),
            ty,
        ),
    }
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is not a date-time (RFC 3339, e.g. 2024-05-01T10:00:00Z)"))
}

fn typed_value(raw: &str, ty: AttrType, backend: DatabaseBackend) -> Result<Value, String> {
    Ok(match ty {
        AttrType::DateTime => parse_instant(raw)?.into(),
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
