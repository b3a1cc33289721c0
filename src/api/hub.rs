//! `/hub`: subscriptions to this server's events.

use super::Handlers;
use crate::error::Error;
use crate::generated::endpoints::{RegisterListenerResponse, UnregisterListenerResponse};
use crate::generated::models::{EventSubscription, EventSubscriptionInput};
use crate::model::document::Document;
use crate::query;
use poem::Request;
use poem_openapi::payload::Json;
use serde_json::{json, Value};

/// Callbacks are called by this server: only plain http(s) URLs with a host are accepted.
fn check_callback(callback: &str) -> Result<(), Error> {
    let url = url::Url::parse(callback)
        .map_err(|e| Error::BadRequest(format!("callback {callback:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::BadRequest(format!(
            "callback {callback:?} must be an http or https URL with a host"
        )));
    }
    Ok(())
}

impl Handlers {
    pub async fn register_listener(
        &self,
        _request: &Request,
        body: Document<EventSubscriptionInput>,
    ) -> poem::Result<RegisterListenerResponse> {
        let body = body.into_json();
        let callback = body
            .get("callback")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        check_callback(&callback)?;
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(q) = &query {
            query::filter::parse(q, &[]).map_err(|e| Error::BadRequest(format!("query: {e}")))?;
        }
        let subscription = self.store.create_subscription(callback, query).await?;
        let mut answer = json!({"id": subscription.id, "callback": subscription.callback});
        if let Some(q) = subscription.query {
            answer["query"] = Value::String(q);
        }
        let Value::Object(answer) = answer else {
            unreachable!("json! of an object literal is an object")
        };
        Ok(RegisterListenerResponse::Created(Json(Document::<
            EventSubscription,
        >::from_json(
            answer
        ))))
    }

    pub async fn unregister_listener(
        &self,
        _request: &Request,
        id: String,
    ) -> poem::Result<UnregisterListenerResponse> {
        self.store.delete_subscription(&id).await?;
        Ok(UnregisterListenerResponse::NoContent)
    }
}
