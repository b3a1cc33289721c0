//! One line of log and one count per request: method, route (the operation, never the raw
//! path or query string, where filter values can be personal data), status, latency, bytes
//! and a request id. A client's `X-Request-ID` is kept when it is a plain token, else one is
//! generated; either way it is echoed in the answer.

use crate::api_document;
use crate::handlers::BASE_PATH;
use crate::metrics::{Metrics, RequestLabels};
use poem::http::{HeaderValue, Method};
use poem::{Endpoint, Request, Response};
use std::sync::Arc;
use std::time::Instant;

pub const REQUEST_ID: &str = "x-request-id";

/// Longest request id kept as sent.
const MAX_REQUEST_ID: usize = 128;

/// The request id sent, when it is 1 to 128 characters of letters, digits and `-_.:`.
fn sent_request_id(request: &Request) -> Option<String> {
    let id = request.headers().get(REQUEST_ID)?.to_str().ok()?;
    let plain = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plain.then(|| id.to_string())
}

/// The route of a request as logged and counted: an operationId of the API document, or a
/// fixed name; what matches nothing is `unmatched`.
pub fn route(method: &Method, path: &str) -> &'static str {
    if let Some(api_path) = path.strip_prefix(BASE_PATH) {
        return api_document::operation_id(method.as_str(), api_path).unwrap_or("unmatched");
    }
    match path {
        "/health/live" => "healthLive",
        "/health/ready" => "healthReady",
        "/metrics" => "metrics",
        "/" | "/openapi.json" | "/openapi.yaml" => "docs",
        _ if path.starts_with("/swagger-ui") => "docs",
        _ => "unmatched",
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Decrements the in-flight gauge when the request ends, answered or dropped.
struct InFlight<'m>(&'m Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Around the whole application: logs and counts every request.
pub async fn observe<E: Endpoint<Output = Response>>(
    endpoint: Arc<E>,
    request: Request,
    metrics: Arc<Metrics>,
) -> poem::Result<Response> {
    let started = Instant::now();
    metrics.in_flight.inc();
    let _in_flight = InFlight(&metrics);
    let request_id = sent_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let route = route(&method, request.uri().path());
    let mut response = endpoint.get_response(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let bytes = body_size(&mut response);
    let status = response.status().as_u16();
    let took = started.elapsed();
    metrics.request(
        RequestLabels {
            operation: route,
            status_class: status_class(status),
        },
        took,
    );
    tracing::info!(
        request_id = %request_id,
        %method,
        route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        bytes,
        "request"
    );
    Ok(response)
}

/// The answer's body size, when it is known before it is sent.
fn body_size(response: &mut Response) -> Option<u64> {
    let body: http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error> =
        response.take_body().into();
    let size = http_body::Body::size_hint(&body).exact();
    response.set_body(poem::Body::from(body));
    size
}
