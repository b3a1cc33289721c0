//! `Upload<T>`: the body of an import, handed to the handler as a stream with its format. Its
//! rows are documented by the model `T` (NDJSON: one `T` per line; JSON: an array of `T`;
//! CSV: text). Any other content type is refused with 415.

use super::{Format, CSV, JSON, NDJSON};
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use std::marker::PhantomData;

pub struct Upload<T> {
    pub format: Format,
    pub body: poem::Body,
    model: PhantomData<fn() -> T>,
}

impl<'a, T: Type> ApiExtractor<'a> for Upload<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let array = MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(T::schema_ref())),
            ..MetaSchema::new("array")
        }));
        let text = MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
        Some(MetaRequest {
            description: None,
            content: vec![
                MetaMediaType {
                    content_type: NDJSON,
                    schema: T::schema_ref(),
                },
                MetaMediaType {
                    content_type: JSON,
                    schema: array,
                },
                MetaMediaType {
                    content_type: CSV,
                    schema: text,
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
        let Some(content_type) = request.content_type() else {
            return Err(poem_openapi::error::ContentTypeError::ExpectContentType.into());
        };
        let Some(format) = Format::of(content_type) else {
            return Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: content_type.to_string(),
            }
            .into());
        };
        Ok(Upload {
            format,
            body: body.take()?,
            model: PhantomData,
        })
    }
}
