//! `PatchRequest<T, Op>`: the body of a PATCH, either a JSON Merge Patch (RFC 7396, sent as
//! `application/merge-patch+json` or `application/json`) checked against the `_Update` model
//! `T`, or a JSON Patch (RFC 6902, `application/json-patch+json`) whose operations are
//! documented by the model `Op`. Any other content type is refused with 415.

use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::{Map, Value};
use std::marker::PhantomData;

/// What a PATCH asks for, once parsed.
#[derive(Debug)]
pub enum Patch {
    Merge(Map<String, Value>),
    Json(json_patch::Patch),
}

pub struct PatchRequest<T, Op> {
    pub patch: Patch,
    model: PhantomData<fn() -> (T, Op)>,
}

const MERGE_PATCH: &str = "application/merge-patch+json";
const JSON: &str = "application/json";
const JSON_PATCH: &str = "application/json-patch+json";

fn bad_request(message: String) -> poem::Error {
    poem::Error::from_string(message, StatusCode::BAD_REQUEST)
}

impl<'a, T, Op> ApiExtractor<'a> for PatchRequest<T, Op>
where
    T: Type + ParseFromJSON,
    Op: Type,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
        Op::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let operations = MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(Op::schema_ref())),
            ..MetaSchema::new("array")
        }));
        Some(MetaRequest {
            description: None,
            content: vec![
                MetaMediaType {
                    content_type: MERGE_PATCH,
                    schema: T::schema_ref(),
                },
                MetaMediaType {
                    content_type: JSON,
                    schema: T::schema_ref(),
                },
                MetaMediaType {
                    content_type: JSON_PATCH,
                    schema: operations,
                },
            ],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let content_type = request.content_type().map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let Some(content_type) = content_type else {
            return Err(poem_openapi::error::ContentTypeError::ExpectContentType.into());
        };
        if ![MERGE_PATCH, JSON, JSON_PATCH].contains(&content_type.as_str()) {
            return Err(
                poem_openapi::error::ContentTypeError::NotSupported { content_type }.into(),
            );
        }
        let bytes = body.take()?.into_bytes().await?;
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad_request(format!("the body is not valid JSON: {e}")))?;
        if let Some(unstorable) = super::validate::unstorable(&json) {
            return Err(bad_request(unstorable));
        }
        let patch = if content_type == JSON_PATCH {
            Patch::Json(json_patch(json).map_err(|e| {
                bad_request(format!("the body is not a JSON Patch (RFC 6902): {e}"))
            })?)
        } else {
            // A merge patch may hold parts of nested objects (`{"usageSpecification":
            // {"name": ...}}`), so it cannot be checked against the model by itself: the
            // merged resource is checked instead. Here it only has to be an object.
            match json {
                Value::Object(map) => Patch::Merge(map),
                _ => return Err(bad_request("a merge patch must be a JSON object".into())),
            }
        };
        Ok(PatchRequest {
            patch,
            model: PhantomData,
        })
    }
}

/// The JSON Patch in `json`. Members its operations do not define are dropped (RFC 6902 §4:
/// they are ignored), and each `value` is set aside while the operations are read and put back
/// as it was: the parser cannot read every number a document may hold (integers past 64 bits).
fn json_patch(mut json: Value) -> Result<json_patch::Patch, serde_json::Error> {
    let mut values = Vec::new();
    if let Value::Array(operations) = &mut json {
        for operation in operations.iter_mut() {
            if let Value::Object(members) = operation {
                members.retain(|k, _| matches!(k.as_str(), "op" | "path" | "from" | "value"));
                values.push(members.get_mut("value").map(Value::take));
            } else {
                values.push(None);
            }
        }
    }
    let mut patch: json_patch::Patch = serde_json::from_value(json)?;
    for (operation, value) in patch.0.iter_mut().zip(values) {
        let slot = match operation {
            json_patch::PatchOperation::Add(op) => &mut op.value,
            json_patch::PatchOperation::Replace(op) => &mut op.value,
            json_patch::PatchOperation::Test(op) => &mut op.value,
            _ => continue,
        };
        if let Some(value) = value {
            *slot = value;
        }
    }
    Ok(patch)
}
