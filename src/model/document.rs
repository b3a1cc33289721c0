//! `Document<T>`: a JSON body checked against the model `T` but kept exactly as the client sent
//! it. The served spec shows `T`'s schema; the stored and returned JSON keeps everything the
//! client wrote (extension attributes of sub-classes, any JSON under `value`, number spelling).

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::marker::PhantomData;

pub struct Document<T> {
    json: Map<String, Value>,
    model: PhantomData<fn() -> T>,
}

impl<T> Document<T> {
    /// Wraps JSON the server built itself (responses); no check is made.
    pub fn from_json(json: Map<String, Value>) -> Self {
        Document {
            json,
            model: PhantomData,
        }
    }

    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    pub fn into_json(self) -> Map<String, Value> {
        self.json
    }
}

impl<T: ParseFromJSON> Document<T> {
    /// Checks JSON against `T` (types, formats, enums, required attributes at every depth).
    pub fn parse(json: Value) -> ParseResult<Self> {
        if super::validate::holds_nul(&json) {
            return Err(ParseError::custom(super::validate::NUL_MESSAGE));
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
            Value::Object(json) => Ok(Self::from_json(json)),
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
        Some(Value::Object(self.json.clone()))
    }
}
