//! `Negotiated<J, T>`: a response offered as JSON (`J`, e.g. a page of documents) and as
//! NDJSON (`Rows<T>`, streamed), the handler choosing by the request's Accept header.

use super::{Rows, JSON, NDJSON};
use poem::{IntoResponse, Request, Response};
use poem_openapi::registry::{MetaMediaType, Registry};
use poem_openapi::types::Type;
use poem_openapi::ResponseContent;

pub enum Negotiated<J, T> {
    Json(J),
    Ndjson(Rows<T>),
}

impl<J: ResponseContent, T: Type> ResponseContent for Negotiated<J, T> {
    fn media_types() -> Vec<MetaMediaType> {
        let mut media = J::media_types();
        media.push(MetaMediaType {
            content_type: NDJSON,
            schema: T::schema_ref(),
        });
        media
    }

    fn register(registry: &mut Registry) {
        J::register(registry);
        T::register(registry);
    }
}

impl<J: IntoResponse, T: Send> IntoResponse for Negotiated<J, T> {
    fn into_response(self) -> Response {
        match self {
            Negotiated::Json(json) => json.into_response(),
            Negotiated::Ndjson(rows) => rows.into_response(),
        }
    }
}

/// Whether the request's Accept prefers NDJSON to JSON: it names `application/x-ndjson` with
/// a weight above 0 and no higher than that of `application/json`, if that is named. Wildcards
/// and no Accept at all get JSON, the standard's answer.
pub fn wants_ndjson(request: &Request) -> bool {
    let Some(accept) = request
        .headers()
        .get(poem::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let weight = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let essence = parts.next()?.trim();
                if !essence.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(None, |best: Option<f32>, q| {
                Some(best.map_or(q, |b| b.max(q)))
            })
    };
    match (weight(NDJSON), weight(JSON)) {
        (Some(n), Some(j)) => n > 0.0 && n >= j,
        (Some(n), None) => n > 0.0,
        (None, _) => false,
    }
}
