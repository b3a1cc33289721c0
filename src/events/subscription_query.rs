//! The `query` of a hub subscription: the list filter grammar applied to events.
//! `eventType=UsageCreateEvent,UsageDeleteEvent`, `event.usage.usageType=VOICE`,
//! `event.usage.relatedParty.id=42` (conditions on one array match one element, as in lists).

use super::{event_type, Change};
use crate::error::Error;
use crate::query::array_groups::{self, ArrayPath, Group};
use crate::query::schema::{self, AttrType};
use crate::query::{filter, Condition, Op};
use crate::resource_kind::ResourceKind;
use chrono::DateTime;
use serde_json::Value;

/// A parsed, checked subscription query.
#[derive(Debug, Clone)]
pub struct SubscriptionQuery {
    conditions: Vec<Resolved>,
}

#[derive(Debug, Clone)]
struct Resolved {
    condition: Condition,
    ty: AttrType,
    /// Path indexes after which the value is an array.
    arrays: Vec<usize>,
    regex: Option<regex::Regex>,
}

/// Every event type this server emits.
pub fn event_types() -> Vec<String> {
    let mut types = Vec::new();
    for kind in [ResourceKind::Usage, ResourceKind::UsageSpecification] {
        for change in [
            Change::Create,
            Change::AttributeValueChange,
            Change::StateChange,
            Change::Delete,
        ] {
            if change != Change::StateChange || kind.state_attribute().is_some() {
                types.push(event_type(kind, change));
            }
        }
    }
    types
}

const EVENT_STRINGS: &[&str] = &[
    "eventId",
    "correlationId",
    "domain",
    "title",
    "description",
    "priority",
    "fieldPath",
];
const EVENT_TIMES: &[&str] = &["eventTime", "timeOcurred"];

fn bad(condition: &Condition, why: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("query {}: {why}", condition.path.join(".")))
}

impl SubscriptionQuery {
    /// An empty query matches every event.
    pub fn parse(query: &str) -> Result<SubscriptionQuery, Error> {
        let mut conditions = Vec::new();
        for condition in filter::parse(query, &[])?.conditions {
            let (ty, arrays) = match condition
                .path
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["eventType"] => {
                    let known = event_types();
                    if let Some(unknown) = condition.values.iter().find(|v| !known.contains(v)) {
                        return Err(bad(
                            &condition,
                            format!("unknown event type {unknown}; known: {}", known.join(", ")),
                        ));
                    }
                    (AttrType::String, Vec::new())
                }
                [name] if EVENT_STRINGS.contains(name) => (AttrType::String, Vec::new()),
                [name] if EVENT_TIMES.contains(name) => (AttrType::DateTime, Vec::new()),
                ["event", resource, rest @ ..] if !rest.is_empty() => {
                    let kind = match *resource {
                        "usage" => ResourceKind::Usage,
                        "usageSpecification" => ResourceKind::UsageSpecification,
                        other => {
                            return Err(bad(
                                &condition,
                                format!("events carry usage or usageSpecification, not {other}"),
                            ))
                        }
                    };
                    let found = schema::resolve(kind, rest).map_err(|e| bad(&condition, e))?;
                    (found.ty, found.arrays.iter().map(|a| a + 2).collect())
                }
                _ => return Err(bad(&condition, "not an attribute of an event")),
            };
            let regex = match condition.op {
                Op::Regex => {
                    crate::query::compile::check_portable_regex(&condition.values[0])
                        .map_err(|e| bad(&condition, e))?;
                    Some(regex::Regex::new(&condition.values[0]).map_err(|e| bad(&condition, e))?)
                }
                _ => None,
            };
            if condition.values.len() != 1 && !matches!(condition.op, Op::Eq | Op::Ne) {
                return Err(bad(&condition, "this operator takes exactly one value"));
            }
            for v in &condition.values {
                if condition.op != Op::Regex {
                    comparable(v, ty).ok_or_else(|| {
                        bad(&condition, format!("{v:?} is not a valid {ty:?} value"))
                    })?;
                }
            }
            conditions.push(Resolved {
                condition,
                ty,
                arrays,
                regex,
            });
        }
        Ok(SubscriptionQuery { conditions })
    }

    pub fn matches(&self, event: &Value) -> bool {
        let all: Vec<&Resolved> = self.conditions.iter().collect();
        group_matches(event, 0, &all)
    }
}

/// A value in a form that compares by type.
#[derive(Debug, PartialEq, PartialOrd)]
enum Comparable {
    Text(String),
    Number(f64),
    Instant(i64),
}

fn comparable(raw: &str, ty: AttrType) -> Option<Comparable> {
    Some(match ty {
        AttrType::Number | AttrType::Integer => Comparable::Number(raw.parse().ok()?),
        AttrType::DateTime => Comparable::Instant(
            DateTime::parse_from_rfc3339(raw)
                .or_else(|_| DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
                .ok()?
                .timestamp_micros(),
        ),
        AttrType::Boolean => match raw {
            "true" | "false" => Comparable::Text(raw.to_string()),
            _ => return None,
        },
        AttrType::String | AttrType::Other => Comparable::Text(raw.to_string()),
    })
}

fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether every condition holds of `value` (paths read from `depth`), those through one
/// array of one element of it (`array_groups`).
fn group_matches(value: &Value, depth: usize, conditions: &[&Resolved]) -> bool {
    array_groups::group(depth, conditions)
        .into_iter()
        .all(|part| match part {
            Group::Plain(c) => condition_matches(value, depth, c),
            Group::Element {
                array_at,
                prefix,
                members,
            } => at_path(value, &prefix[depth..])
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items
                        .iter()
                        .any(|item| group_matches(item, array_at + 1, &members))
                }),
        })
}

impl ArrayPath for Resolved {
    fn path(&self) -> &[String] {
        &self.condition.path
    }
    fn arrays(&self) -> &[usize] {
        &self.arrays
    }
}

fn at_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn condition_matches(value: &Value, depth: usize, c: &Resolved) -> bool {
    let actual = at_path(value, &c.condition.path[depth..]).and_then(json_text);
    let Some(actual) = actual else {
        return c.condition.op == Op::Ne;
    };
    if let Some(regex) = &c.regex {
        return regex.is_match(&actual);
    }
    let Some(actual) = comparable(&actual, c.ty) else {
        return c.condition.op == Op::Ne;
    };
    let mut wanted = c
        .condition
        .values
        .iter()
        .filter_map(|v| comparable(v, c.ty));
    match c.condition.op {
        Op::Eq => wanted.any(|w| w == actual),
        Op::Ne => wanted.all(|w| w != actual),
        op => wanted.next().is_some_and(|w| match op {
            Op::Gt => actual > w,
            Op::Gte => actual >= w,
            Op::Lt => actual < w,
            _ => actual <= w,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"eventType": "UsageCreateEvent", "eventTime": "2024-05-01T10:00:00Z",
            "event": {"usage": {"usageType": "VOICE", "relatedParty": [
                {"id": "p1", "role": "customer"}, {"id": "p2", "role": "user"}],
                "ratedProductUsage": [{"taxRate": 0.2}]}}})
    }

    fn q(query: &str) -> bool {
        SubscriptionQuery::parse(query).unwrap().matches(&event())
    }

    #[test]
    fn matches_like_list_filters() {
        assert!(q(""));
        assert!(q("eventType=UsageCreateEvent,UsageDeleteEvent"));
        assert!(!q("eventType=UsageDeleteEvent"));
        assert!(q("event.usage.usageType=VOICE"));
        assert!(q(
            "event.usage.relatedParty.id=p1&event.usage.relatedParty.role=customer"
        ));
        assert!(!q(
            "event.usage.relatedParty.id=p1&event.usage.relatedParty.role=user"
        ));
        assert!(q("event.usage.ratedProductUsage.taxRate.gt=0.15"));
        assert!(q("eventTime.lt=2024-05-01T12:00:00%2B01:00"));
        assert!(!q("event.usageSpecification.name=x"));
    }

    #[test]
    fn malformed_queries_are_refused() {
        for bad in [
            "eventType=NoSuchEvent",
            "event.usage.nope=1",
            "foo=bar",
            "event.other.id=1",
            "event.usage.ratedProductUsage.taxRate.gt=x",
        ] {
            assert!(SubscriptionQuery::parse(bad).is_err(), "{bad}");
        }
    }
}
