//! `Document<T>`: a JSON body checked against the model `T` but kept exactly as the client sent
//! it. The served spec shows `T`'s schema; the stored and returned JSON keeps everything the
//! client wrote (extension attributes of sub-classes, any JSON under `value`, number spelling).
//!
//! A response document may also be JSON text the database rendered (`Document::rendered`):
//! `JsonBody` writes it into the response as it is, without parsing it again.

use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::marker::PhantomData;

pub struct Document<T> {
    json: Json,
    model: PhantomData<fn() -> T>,
}

enum Json {
    Parsed(Map<String, Value>),
    /// A JSON object as text, from a source that only produces valid JSON (the database).
    Text(String),
}

impl<T> Document<T> {
    /// Wraps JSON the server built itself (responses); no check is made.
    pub fn from_json(json: Map<String, Value>) -> Self {
        Document {
            json: Json::Parsed(json),
            model: PhantomData,
        }
    }

    /// Wraps a JSON object the database rendered as text; no check is made.
    pub fn rendered(text: String) -> Self {
        Document {
            json: Json::Text(text),
            model: PhantomData,
        }
    }

    pub fn into_json(self) -> Map<String, Value> {
        match self.json {
            Json::Parsed(map) => map,
            Json::Text(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            },
        }
    }
}

impl<T: ParseFromJSON> Document<T> {
    /// Checks JSON against `T` (types, formats, enums, required attributes at every depth).
    pub fn parse(json: Value) -> ParseResult<Self> {
        if let Some(unstorable) = super::validate::unstorable(&json) {
            return Err(ParseError::custom(unstorable));
        }
        // The model decides types, formats and required attributes; the document adds what
        // the model lets through (null for optional attributes) and names the path at fault.
        let violation = super::validate::first_violation(&T::name(), &json);
        if let Err(e) = T::parse_from_json(Some(json.clone())) {
            return Err(match violation {
                Some(violation) => ParseError::custom(violation),
                None => e.propagate(),
            });
        }
        if let Some(violation) = violation {
            return Err(ParseError::custom(violation));
        }
        match json {
            Value::Object(map) => Ok(Self::from_json(map)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<T: Type> Type for Document<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry)
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Document<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Self::parse(value.ok_or_else(ParseError::expected_input)?)
    }
}

impl<T: Type> ToJSON for Document<T> {
    fn to_json(&self) -> Option<Value> {
        match &self.json {
            Json::Parsed(map) => Some(Value::Object(map.clone())),
            Json::Text(text) => serde_json::from_str(text).ok(),
        }
    }
}

/// The content type of every JSON response (as poem-openapi's `Json`).
const JSON: &str = "application/json; charset=utf-8";

/// JSON that can write itself into a response body.
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl<T> WriteJson for Document<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match &self.json {
            // Serialising a map of JSON values into memory cannot fail.
            Json::Parsed(map) => {
                let _ = serde_json::to_writer(&mut *out, map);
            }
            Json::Text(text) => out.extend_from_slice(text.as_bytes()),
        }
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

/// A JSON response body of documents (one or a list), written straight into the response:
/// the same schema and content type as poem-openapi's `Json`, without turning rendered text
/// back into values.
pub struct JsonBody<T>(pub T);

impl<T: Type + Send> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry)
    }
}

impl<T: WriteJson + Send> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        let mut out = Vec::with_capacity(1024);
        self.0.write_json(&mut out);
        Response::builder().content_type(JSON).body(out)
    }
}
