//! `/listener/*` as a verifying receiver: with `TMF635_LISTENER_SECRET` set, an event posted
//! there must carry a valid Standard Webhooks signature made with that secret, at most five
//! minutes old (either way), else it is refused with 401 and not recorded.

use crate::config::Secret;
use crate::error::Error;
use crate::events::signature;
use crate::handlers::BASE_PATH;
use poem::http::Method;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;

pub async fn verify_signed_events<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    secret: Option<Secret>,
) -> poem::Result<Response> {
    let is_event_post = request.method() == Method::POST
        && request
            .uri()
            .path()
            .strip_prefix(BASE_PATH)
            .is_some_and(|path| path.starts_with("/listener/"));
    if let (Some(secret), true) = (&secret, is_event_post) {
        // The body is already read whole, within the body limit (`limits::within_limits`).
        let body = request.take_body().into_bytes().await?;
        signature::verify(
            secret.expose(),
            request.header(signature::ID),
            request.header(signature::TIMESTAMP),
            request.header(signature::SIGNATURE),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| Error::Unauthorized(format!("event refused: {e}")))?;
        request.set_body(body);
    }
    endpoint
        .call(request)
        .await
        .map(IntoResponse::into_response)
}
