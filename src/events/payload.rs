//! The TMF635 v4 event payloads a change of a resource announces.

use crate::resource_kind::ResourceKind;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

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
    /// The event as listeners get it, as JSON text: written around the resource's text, so
    /// the resource is serialised once for its row and its event alike.
    pub payload: String,
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

/// The event of `change` of the resource whose JSON text is `resource`; `field_path` names
/// the changed attributes of an attribute value change.
fn event(
    kind: ResourceKind,
    change: Change,
    resource_id: &str,
    resource: &str,
    field_path: Option<&str>,
) -> Event {
    let id = crate::resource_kind::new_id();
    let time = Utc::now();
    let event_type = event_type(kind, change);
    let mut payload = String::with_capacity(resource.len() + 200);
    payload.push_str("{\"eventId\":");
    push_string(&mut payload, &id);
    payload.push_str(",\"eventTime\":");
    push_string(
        &mut payload,
        &time.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    payload.push_str(",\"eventType\":");
    push_string(&mut payload, &event_type);
    payload.push_str(",\"event\":{");
    push_string(&mut payload, kind.name());
    payload.push(':');
    payload.push_str(resource);
    payload.push('}');
    if let Some(field_path) = field_path {
        payload.push_str(",\"fieldPath\":");
        push_string(&mut payload, field_path);
    }
    payload.push('}');
    Event {
        id,
        event_type,
        kind,
        resource_id: resource_id.to_string(),
        time,
        payload,
    }
}

/// Appends `text` as a JSON string.
fn push_string(out: &mut String, text: &str) {
    // A string always serialises.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// The id of a resource document.
fn id_of(resource: &Map<String, Value>) -> &str {
    resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The creation event of the resource `resource_id` whose JSON text is `resource`.
pub fn created(kind: ResourceKind, resource_id: &str, resource: &str) -> Vec<Event> {
    vec![event(kind, Change::Create, resource_id, resource, None)]
}

pub fn deleted(kind: ResourceKind, resource: &Map<String, Value>) -> Vec<Event> {
    // A map of JSON values always serialises.
    let text = serde_json::to_string(resource).unwrap_or_default();
    vec![event(kind, Change::Delete, id_of(resource), &text, None)]
}

/// The events of an update: a state change when the state attribute changed, an attribute value
/// change (naming the changed attributes in `fieldPath`) when anything else changed.
/// `after_json` is the text of `after`.
pub fn updated(
    kind: ResourceKind,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    after_json: &str,
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
    let (id, text) = (id_of(after), after_json);
    if state.is_some_and(|s| changed.contains(&s)) {
        events.push(event(kind, Change::StateChange, id, text, None));
    }
    let attributes: Vec<&str> = changed.into_iter().filter(|c| Some(*c) != state).collect();
    if !attributes.is_empty() {
        let field_path = attributes.join(",");
        let change = Change::AttributeValueChange;
        events.push(event(kind, change, id, text, Some(&field_path)));
    }
    events
}
