//! The TMF635 v4 event payloads a change of a resource announces.

use crate::resource::ResourceKind;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    AttributeValueChange,
    StateChange,
    Delete,
}

/// One event, ready to be stored in the outbox.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub kind: ResourceKind,
    pub resource_id: String,
    pub time: DateTime<Utc>,
    pub payload: Value,
}

/// `UsageCreateEvent`, `UsageSpecificationDeleteEvent`, ...
pub fn event_type(kind: ResourceKind, change: Change) -> String {
    let resource = match kind {
        ResourceKind::Usage => "Usage",
        ResourceKind::UsageSpecification => "UsageSpecification",
    };
    let change = match change {
        Change::Create => "Create",
        Change::AttributeValueChange => "AttributeValueChange",
        Change::StateChange => "StateChange",
        Change::Delete => "Delete",
    };
    format!("{resource}{change}Event")
}

fn event(kind: ResourceKind, change: Change, resource: &Map<String, Value>) -> Event {
    let id = crate::resource::new_id();
    let time = Utc::now();
    let event_type = event_type(kind, change);
    let resource_id = resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let payload = json!({
        "eventId": id,
        "eventTime": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "eventType": event_type,
        "event": { kind.name(): resource },
    });
    Event {
        id,
        event_type,
        kind,
        resource_id,
        time,
        payload,
    }
}

pub fn created(kind: ResourceKind, resource: &Map<String, Value>) -> Vec<Event> {
    vec![event(kind, Change::Create, resource)]
}

pub fn deleted(kind: ResourceKind, resource: &Map<String, Value>) -> Vec<Event> {
    vec![event(kind, Change::Delete, resource)]
}

/// The events of an update: a state change when the state attribute changed, an attribute value
/// change (naming the changed attributes in `fieldPath`) when anything else changed.
pub fn updated(
    kind: ResourceKind,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<Event> {
    let state = kind.state_attribute();
    let mut changed: Vec<&str> = after
        .iter()
        .filter(|(k, v)| before.get(k.as_str()) != Some(v))
        .map(|(k, _)| k.as_str())
        .chain(
            before
                .keys()
                .filter(|k| !after.contains_key(k.as_str()))
                .map(String::as_str),
        )
        .collect();
    changed.sort_unstable();
    let mut events = Vec::new();
    if state.is_some_and(|s| changed.contains(&s)) {
        events.push(event(kind, Change::StateChange, after));
    }
    let attributes: Vec<&str> = changed.into_iter().filter(|c| Some(*c) != state).collect();
    if !attributes.is_empty() {
        let mut e = event(kind, Change::AttributeValueChange, after);
        e.payload["fieldPath"] = Value::String(attributes.join(","));
        events.push(e);
    }
    events
}
