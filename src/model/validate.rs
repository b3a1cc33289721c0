//! Names what a JSON body breaks in its schema, as a path (`usageCharacteristic[1].name is
//! required`). The generated models decide whether a body is valid; this only explains a
//! refusal in terms the client can act on.

use super::compiled_schema::{compiled, Compiled, Format, Node};
use serde_json::Value;
use std::fmt;

/// How deeply arrays and objects may nest in a stored document: as deep as the JSON parser
/// reads a body (serde_json stops at 128 levels), so a JSON Patch cannot build what no body
/// could carry, and every walk over a document stays short.
pub const MAX_JSON_DEPTH: usize = 127;

/// The longest number literal a body may hold. Both databases store the text of a number as
/// it was sent only within bounds (PostgreSQL's `numeric` has at most 16,383 digits after the
/// point; SQLite's JSON functions read numbers as 64-bit floats): no real quantity or amount
/// is anywhere near this long.
pub const MAX_NUMBER_LENGTH: usize = 100;

/// What in `value` no backend can store as it was sent, named by its path, if anything:
/// U+0000 in a string or key (PostgreSQL's jsonb refuses it), nesting deeper than
/// [`MAX_JSON_DEPTH`], or a number beyond what both databases keep exactly (longer than
/// [`MAX_NUMBER_LENGTH`], beyond the range of a 64-bit float, or so small it would read as
/// zero). Refused on every backend alike, so a body means the same wherever it is stored.
pub fn unstorable(value: &Value) -> Option<String> {
    unstorable_at(value, Path::Body, 0)
}

fn unstorable_at(value: &Value, path: Path, depth: usize) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(format!(
            "{}: strings may not contain the NUL character (U+0000)",
            describe(path)
        )),
        Value::Number(n) if !storable_number(n) => Some(format!(
            "{} holds a number that cannot be stored as sent (at most {MAX_NUMBER_LENGTH} \
             characters, within the range of a 64-bit float): {}",
            describe(path),
            shortened(n.as_str())
        )),
        Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => Some(format!(
            "{} nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects",
            describe(path)
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| unstorable_at(item, Path::Index(&path, i), depth + 1)),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(format!(
                    "{}: attribute names may not contain the NUL character (U+0000)",
                    describe(path)
                ));
            }
            unstorable_at(item, Path::Key(&path, key), depth + 1)
        }),
        _ => None,
    }
}

/// Whether a number's text is short, finite as a 64-bit float, and not a non-zero value that
/// a 64-bit float would read as zero.
fn storable_number(number: &serde_json::Number) -> bool {
    // The text as sent (`arbitrary_precision`), not a copy of it: this runs on every number of
    // every body.
    let text = number.as_str();
    if text.len() > MAX_NUMBER_LENGTH {
        return false;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let zero = !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    match text.parse::<f64>() {
        Ok(f) => f.is_finite() && (f != 0.0 || zero),
        Err(_) => false,
    }
}

/// Whether `value` written as JSON takes at most `max_bytes`: it is written into a counter
/// that stops at the bound, so the cost never passes the bound however large the value is.
pub fn fits_in(value: &Value, max_bytes: usize) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(bytes.len())
                .ok_or_else(|| std::io::Error::other("over the bound"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(max_bytes), value).is_ok()
}

/// The first characters of a long text, for a message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// The first violation of schema `name` in `value`, if any.
pub fn first_violation(name: &str, value: &Value) -> Option<String> {
    let schemas = compiled();
    check(schemas, schemas.root(name)?, value, Path::Body)
}

/// Where a value sits in the body (`usageCharacteristic[1].name`). Built as the walk goes
/// down and written out only for a violation: most bodies have none, and formatting the path
/// of every value was a tenth of the CPU of a create.
#[derive(Clone, Copy)]
enum Path<'a> {
    Body,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Body => Ok(()),
            Path::Key(Path::Body, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The path as a message names it: `the body` for the whole body.
fn describe(path: Path) -> String {
    match path {
        Path::Body => "the body".into(),
        path => path.to_string(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check(schemas: &Compiled, node: usize, value: &Value, path: Path) -> Option<String> {
    let wrong = |expected: &str| {
        Some(format!(
            "{} must be {expected}, not {}",
            describe(path),
            kind_of(value)
        ))
    };
    match schemas.node(node) {
        Node::Object {
            properties,
            required,
        } => {
            let Value::Object(map) = value else {
                return wrong("an object");
            };
            let properties = properties.as_deref()?;
            // Properties are few: a scan compares short strings, cheaper than hashing them.
            let property = |key: &str| properties.iter().find(|p| p.name == key);
            let holds_any = |key: &str| property(key).is_some_and(|p| p.holds_any);
            for key in required {
                match map.get(*key) {
                    None => return Some(format!("{} is required", Path::Key(&path, key))),
                    Some(Value::Null) if !holds_any(key) => {
                        return Some(format!("{} is required", Path::Key(&path, key)))
                    }
                    _ => {}
                }
            }
            map.iter().find_map(|(key, v)| {
                let property = property(key)?;
                // No attribute of the document is nullable: an absent value is left out.
                if v.is_null() && !property.holds_any {
                    return Some(format!(
                        "{} is null: leave an attribute out instead of sending null",
                        Path::Key(&path, key)
                    ));
                }
                check(schemas, property.node, v, Path::Key(&path, key))
            })
        }
        Node::Array(items) => {
            let Value::Array(elements) = value else {
                return wrong("an array");
            };
            elements
                .iter()
                .enumerate()
                .find_map(|(i, item)| check(schemas, *items, item, Path::Index(&path, i)))
        }
        Node::String { allowed, format } => {
            let Value::String(s) = value else {
                return wrong("a string");
            };
            if let Some(allowed) = allowed {
                if !allowed.iter().any(|a| a == value) {
                    let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                    return Some(format!(
                        "{} must be one of {}, not {s:?}",
                        describe(path),
                        names.join(", ")
                    ));
                }
            }
            if *format == Format::Uri {
                if let Some(problem) = crate::model::scalar::uri_problem(s) {
                    return Some(format!("{}: {problem}", describe(path)));
                }
            }
            if *format == Format::DateTime && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                return Some(format!(
                    "{} must be a date-time (RFC 3339, e.g. 2024-05-01T10:00:00Z), not {s:?}",
                    describe(path)
                ));
            }
            None
        }
        Node::Integer if !value.is_i64() && !value.is_u64() => wrong("an integer"),
        Node::Number if !value.is_number() => wrong("a number"),
        Node::Number
            if !value
                .as_f64()
                .is_some_and(|f| f.is_finite() && f.abs() <= f64::from(f32::MAX)) =>
        {
            Some(format!("{} is out of range: {value}", describe(path)))
        }
        Node::Boolean if !value.is_boolean() => wrong("a boolean"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_are_named_by_path() {
        let v = |body: Value| first_violation("Usage_Create", &body);
        assert_eq!(
            v(json!({"usageCharacteristic": [{"name": "a", "value": 1}, {"value": 2}]})),
            Some("usageCharacteristic[1].name is required".into())
        );
        assert_eq!(
            v(json!({"status": "nope"})).unwrap(),
            "status must be one of received, rejected, recycled, guided, rated, rerated, billed, not \"nope\""
        );
        assert_eq!(
            v(json!({"usageDate": 5})),
            Some("usageDate must be a string, not a number".into())
        );
        assert_eq!(
            v(json!({"relatedParty": [{"id": "p"}]})),
            Some("relatedParty[0].@referredType is required".into())
        );
        assert_eq!(v(json!({"usageType": "VOICE"})), None);
        assert_eq!(
            v(json!({"usageType": null})),
            Some("usageType is null: leave an attribute out instead of sending null".into())
        );
        assert_eq!(
            v(json!({"usageCharacteristic": [{"name": "n", "value": null}]})),
            None
        );
    }
}
