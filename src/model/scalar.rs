//! Scalar types whose OpenAPI schema must match the document exactly (poem-openapi's built-in
//! integers carry an `int32`/`int64` format and its strings no `uri`/`base64` format, which the
//! TMF635 document does not have).
//!
//! Parsing is what validates a request: these types accept what their schema allows and nothing
//! else, and they never lose what the client sent, since documents are stored as sent.

use poem::http::HeaderValue;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToHeader, ToJSON, Type,
};
use serde_json::Value;
use std::borrow::Cow;

/// `date-time` values: RFC 3339 with any offset.
pub type DateTime = chrono::DateTime<chrono::FixedOffset>;

/// Implements `Type` for a newtype whose schema is inline `type` (+ `format`).
macro_rules! inline_scalar {
    ($name:ident, $ty:literal, $format:expr) => {
        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                match $format {
                    Some(format) => format!("{}_{}", $ty, format).into(),
                    None => $ty.into(),
                }
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    format: $format,
                    ..MetaSchema::new($ty)
                }))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }
    };
}

/// A JSON integer (schema `type: integer`, no format), held as `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Integer(pub i64);
inline_scalar!(Integer, "integer", None::<&'static str>);

impl ParseFromJSON for Integer {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Integer)
                .ok_or_else(|| ParseError::custom(format!("{n} is not a 64-bit integer"))),
            Some(other) => Err(ParseError::expected_type(other)),
            None => Err(ParseError::expected_input()),
        }
    }
}

impl ToJSON for Integer {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.into())
    }
}

impl ParseFromParameter for Integer {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value
            .trim()
            .parse()
            .map(Integer)
            .map_err(|_| ParseError::custom(format!("{value:?} is not an integer")))
    }
}

impl ToHeader for Integer {
    fn to_header(&self) -> Option<HeaderValue> {
        Some(HeaderValue::from(self.0))
    }
}

/// A JSON number (schema `type: number`, `format: float`); infinite or out-of-range values
/// (`1e999`) are refused, the client's spelling of the number is kept in the document.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Float(pub f64);
inline_scalar!(Float, "number", Some("float"));

impl ParseFromJSON for Float {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() <= f64::from(f32::MAX))
                .map(Float)
                .ok_or_else(|| ParseError::custom(format!("{n} is out of range"))),
            Some(other) => Err(ParseError::expected_type(other)),
            None => Err(ParseError::expected_input()),
        }
    }
}

impl ToJSON for Float {
    fn to_json(&self) -> Option<Value> {
        serde_json::Number::from_f64(self.0).map(Value::Number)
    }
}

/// Implements a string newtype whose content is checked by `$check`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $format:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);
        inline_scalar!($name, "string", $format);

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => {
                        let check: fn(&str) -> Result<(), String> = $check;
                        check(&s).map_err(ParseError::custom)?;
                        Ok($name(s))
                    }
                    Some(other) => Err(ParseError::expected_type(other)),
                    None => Err(ParseError::expected_input()),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

checked_string!(
    /// A plain string: unlike poem-openapi's `String`, a JSON number or boolean is refused, not
    /// turned into text (the document is stored as sent, so it must really hold a string).
    Text,
    None::<&'static str>,
    |_| Ok(())
);

checked_string!(
    /// A URI reference (`format: uri`). TMF payloads carry both absolute URLs and relative
    /// references here, so only what can never be part of a URI is refused.
    Uri,
    Some("uri"),
    |s| uri_problem(s).map_or(Ok(()), Err)
);

/// Why `s` cannot be a URI reference (RFC 3986), if it cannot: empty, or holding a character
/// no URI holds unencoded (anything but ASCII letters, digits, `-._~:/?#[]@!$&'()*+,;=` and
/// `%`).
pub fn uri_problem(s: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    match s.chars().find(|c| !allowed(*c)) {
        _ if s.is_empty() => Some("an empty string is not a URI".into()),
        Some(c) => Some(format!("{s:?} is not a URI: it contains {c:?}")),
        None => None,
    }
}

checked_string!(
    /// Base64 encoded content (`format: base64`), standard or URL-safe alphabet.
    Base64,
    Some("base64"),
    |s| {
        let ok = s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_' | '=') || c.is_ascii_whitespace()
        });
        if ok {
            Ok(())
        } else {
            Err("content is not base64".into())
        }
    }
);

/// Implements the poem-openapi traits for a generated schema that holds any JSON value: a
/// named schema (so `$ref: Any` stays a reference, as in the document) with no type.
#[macro_export]
macro_rules! any_json_schema {
    ($name:ident, $schema_name:literal, $description:literal) => {
        impl poem_openapi::types::Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                $schema_name.into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                poem_openapi::registry::MetaSchemaRef::Reference($schema_name.into())
            }

            fn register(registry: &mut poem_openapi::registry::Registry) {
                registry.create_schema::<Self, _>($schema_name.into(), |_| {
                    poem_openapi::registry::MetaSchema {
                        rust_typename: Some(std::any::type_name::<Self>()),
                        description: Some($description),
                        ..poem_openapi::registry::MetaSchema::ANY
                    }
                });
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl poem_openapi::types::ParseFromJSON for $name {
            fn parse_from_json(
                value: Option<serde_json::Value>,
            ) -> poem_openapi::types::ParseResult<Self> {
                // Absent is an error (the property is required); JSON null is a value.
                value
                    .map($name)
                    .ok_or_else(poem_openapi::types::ParseError::expected_input)
            }
        }

        impl poem_openapi::types::ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(self.0.clone())
            }
        }
    };
}
