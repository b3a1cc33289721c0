//! One row of an import: checked exactly as `POST /usage` checks its body (the same model and
//! messages), given its id (its own, or one derived from the row) and href, and made ready to
//! store.

use crate::generated::models::UsageCreate;
use crate::model::document::Document;
use crate::store::import::ImportRow;
use entity::usage::Entity as UsageTable;
use serde_json::{Map, Value};

/// Longest id a row may carry.
const MAX_ID_LENGTH: usize = 256;

/// Why a row was rejected: the message `POST /usage` would answer, and the attribute it names.
#[derive(Debug, Clone)]
pub struct RowError {
    pub attribute: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(message: impl Into<String>) -> RowError {
        let mut message: String = message.into();
        // The model's own wording (`failed to parse "Usage_Create": ...`): a row has only one
        // model, so what follows says it all.
        if let Some(rest) = message
            .strip_prefix("failed to parse \"")
            .and_then(|m| m.split_once("\": "))
            .map(|(_, rest)| rest.to_string())
        {
            message = rest;
        }
        RowError {
            attribute: attribute_named(&message),
            message,
        }
    }

    pub fn at(attribute: &str, message: impl Into<String>) -> RowError {
        RowError {
            attribute: Some(attribute.to_string()),
            message: message.into(),
        }
    }
}

/// The attribute a validation message starts with (`usageCharacteristic[1].name is
/// required`), if it starts with one.
fn attribute_named(message: &str) -> Option<String> {
    let first = message.split([' ', ':']).next().unwrap_or("");
    let is_path = !first.is_empty()
        && first != "the"
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@_.[]".contains(&b));
    is_path.then(|| first.to_string())
}

/// Whether `id` can be an id: printable, safe in a path segment, not too long.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LENGTH
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
}

/// Checks the row at `line` and builds the usage it stores, with `href_prefix` before its id.
pub fn usage(line: u64, value: Value, href_prefix: &str) -> Result<ImportRow, RowError> {
    let Value::Object(mut body) = value else {
        return Err(RowError::new("a row must be a JSON object"));
    };
    let (id, former_id) = match body.remove("id") {
        None => {
            let derived = derived_ids(line, &body);
            (derived.id, Some(derived.former))
        }
        Some(Value::String(id)) if valid_id(&id) => (id, None),
        Some(_) => {
            return Err(RowError::at(
                "id",
                format!(
                "id must be a string of 1 to {MAX_ID_LENGTH} letters, digits and -._~: characters"
            ),
            ))
        }
    };
    let checked = Document::<UsageCreate>::parse(Value::Object(body))
        .map_err(|e| RowError::new(e.into_message()))?;
    let href = format!("{href_prefix}{id}");
    let document = crate::handlers::new_document(id, href, checked);
    ImportRow::new::<UsageTable>(line, document, former_id)
        .map_err(|e| RowError::new(e.to_string()))
}

/// The ids of a row that carries none.
struct DerivedIds {
    /// Its id: the same for the same row on the same line, so importing a file again (or after
    /// rows were appended to it) skips what is stored instead of storing it twice. A UUIDv7
    /// whose time is the row's `usageDate` and whose other bits are a SHA-256 of the line and
    /// the row: rows are stored in date order (`bulk::order`), so their ids ascend as they are
    /// stored and the id indexes (the usage's key, its array-value rows) are appended to
    /// instead of written all over.
    id: String,
    /// The id servers that stored rows in the file's order derived for it: a UUIDv8 whose
    /// first 48 bits are the line, the same hash after them. A row stored under it is stored
    /// already, so a file imported by such a server and sent again is not stored twice.
    former: String,
}

fn derived_ids(line: u64, body: &Map<String, Value>) -> DerivedIds {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(line.to_be_bytes());
    // The row's compact JSON text, written straight into the hash rather than copied into a
    // `Value` and a `String` first: the same bytes. (Neither a hash nor a JSON object can
    // fail to be written.)
    let _ = serde_json::to_writer(&mut hash, body);
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&line.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    let by_line = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    let millis = body
        .get("usageDate")
        .and_then(Value::as_str)
        .and_then(|date| chrono::DateTime::parse_from_rfc3339(date).ok())
        .and_then(|date| u64::try_from(date.timestamp_millis()).ok())
        .unwrap_or(0);
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&digest[..10]);
    let by_date = uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid();
    DerivedIds {
        id: by_date.to_string(),
        former: by_line.to_string(),
    }
}

/// A row parsed from JSON text, bounded like a `POST /usage` body.
pub fn parse_json(text: &[u8], max_bytes: usize) -> Result<Value, RowError> {
    if text.len() > max_bytes {
        return Err(RowError::new(format!(
            "the row is larger than {max_bytes} bytes"
        )));
    }
    serde_json::from_slice(text)
        .map_err(|e| RowError::new(format!("the row is not valid JSON: {e}")))
}

/// `errors` entries of a job.
pub fn error_json(line: u64, error: &RowError) -> Value {
    let mut entry = Map::new();
    entry.insert("line".into(), Value::from(line));
    if let Some(attribute) = &error.attribute {
        entry.insert("attribute".into(), Value::String(attribute.clone()));
    }
    entry.insert("message".into(), Value::String(error.message.clone()));
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(date: &str) -> Map<String, Value> {
        let Value::Object(body) = json!({"usageDate": date, "status": "received"}) else {
            unreachable!("an object literal")
        };
        body
    }

    fn derived_id(line: u64, body: &Map<String, Value>) -> String {
        derived_ids(line, body).id
    }

    #[test]
    fn derived_ids_are_stable_and_ascend_with_the_usage_date() {
        let (late, early) = (body("2026-11-30T00:00:00Z"), body("2026-11-01T00:00:00Z"));
        assert_eq!(derived_id(7, &late), derived_id(7, &late));
        assert_ne!(derived_id(7, &late), derived_id(7, &early));
        assert_ne!(derived_id(7, &late), derived_id(8, &late));
        // Whatever the rows' lines, a later date has a greater id.
        let ids: Vec<String> = [(70_000, &early), (300, &late)]
            .into_iter()
            .map(|(line, body)| derived_id(line, body))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let id = uuid::Uuid::parse_str(&ids[1]).expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
        let (seconds, _) = id.get_timestamp().expect("a time").to_unix();
        assert_eq!(seconds, 1_795_996_800);
    }

    /// Ids are stored: a file imported again is skipped only if its rows get the ids they got
    /// before, whatever the text of numbers, escapes and nesting.
    #[test]
    fn derived_ids_do_not_change() {
        let Value::Object(body) = json!({
            "usageDate": "2026-11-30T10:00:00.5+02:00",
            "description": "caf\u{e9} \"quoted\" \\ \n tab\t",
            "n": [0.2, 1e3, -0, 12345678901234567890u64, 1.5e-7],
            "nested": {"z": 1, "a": [true, null, {"k": "v"}]},
            "emoji": "\u{1F600}",
            "ctl": "\u{1}"
        }) else {
            unreachable!("an object literal")
        };
        let derived = derived_ids(42, &body);
        assert_eq!(derived.id, "01a22b77-c9f4-70f6-a2cf-a6cad151c6ff");
        assert_eq!(derived.former, "00000000-002a-80f6-a2cf-a6cad151c6ff");
    }

    #[test]
    fn the_former_id_starts_with_the_line() {
        let former = derived_ids(7, &body("2026-11-30T00:00:00Z")).former;
        let id = uuid::Uuid::parse_str(&former).expect("a UUID");
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(&id.as_bytes()[..6], &7u64.to_be_bytes()[2..]);
    }
}
