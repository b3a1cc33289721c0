//! `/hub`: subscriptions to this server's events, and (extensions) what was delivered to them.

use super::representation::paging;
use super::Handlers;
use crate::error::Error;
use crate::events::egress::redact;
use crate::events::subscription_query::SubscriptionQuery;
use crate::generated::endpoints::{
    ListHubDeliveryResponse, ListHubResponse, RedriveHubResponse, RegisterListenerResponse,
    RetrieveHubResponse, UnregisterListenerResponse,
};
use crate::generated::models::{
    EventDelivery, EventSubscription, EventSubscriptionInput, RedriveResult,
};
use crate::model::document::Document;
use crate::model::document::JsonBody;
use crate::model::scalar::Integer;
use chrono::SecondsFormat;
use entity::{delivery, hub};
use poem::Request;
use serde_json::{json, Map, Value};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A subscription as answered: its callback redacted (user, password and query may be
/// credentials; the stored callback keeps them and deliveries use them).
fn subscription_body(subscription: hub::Model) -> Document<EventSubscription> {
    let mut body = json!({"id": subscription.id, "callback": redact(&subscription.callback)});
    if let Some(query) = subscription.query {
        body["query"] = Value::String(query);
    }
    Document::from_json(object(body))
}

fn delivery_body(d: delivery::Model) -> Document<EventDelivery> {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut body = json!({
        "id": d.id, "eventId": d.event_id, "eventType": d.event_type, "status": d.status,
        "attempts": d.attempts, "createdAt": time(d.created_at),
    });
    if d.status == crate::store::delivery::PENDING {
        body["nextAttemptAt"] = Value::String(time(d.next_attempt_at));
    }
    if let Some(error) = d.last_error {
        body["lastError"] = Value::String(error);
    }
    if let Some(at) = d.delivered_at {
        body["deliveredAt"] = Value::String(time(at));
    }
    Document::from_json(object(body))
}

impl Handlers {
    pub async fn register_listener(
        &self,
        request: &Request,
        body: Document<EventSubscriptionInput>,
    ) -> poem::Result<RegisterListenerResponse> {
        let body = body.into_json();
        let callback = body
            .get("callback")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.callbacks
            .check_registration(&callback)
            .await
            .map_err(|e| Error::BadRequest(format!("callback: {e}")))?;
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|q| !q.trim().is_empty());
        if let Some(q) = &query {
            SubscriptionQuery::parse(q)?;
        }
        // 409 Conflict: the hub as it is (full) conflicts with one more subscription, and
        // unregistering one resolves it. Not 429 (no rate: waiting does not help) nor 403
        // (nothing to do with who asks). Checked before the insert, not in its transaction:
        // registrations racing on several instances may go a few over.
        let store = self.store_for(request)?;
        let max = self.settings.max_subscriptions;
        if store.subscription_count().await? >= max {
            return Err(Error::Conflict(format!(
                "this server keeps at most {max} subscriptions (TMF635_MAX_SUBSCRIPTIONS); \
                 unregister one first"
            ))
            .into());
        }
        let secret = crate::events::signature::new_secret()
            .map_err(|e| Error::Internal(format!("no random bytes for the secret: {e}")))?;
        let subscription = store
            .create_subscription(callback, query, secret.clone())
            .await?;
        // The only time the secret is answered: the subscriber keeps it to verify callbacks.
        let mut body = subscription_body(subscription).into_json();
        body.insert("secret".into(), Value::String(secret));
        Ok(RegisterListenerResponse::Created(JsonBody(
            Document::from_json(body),
        )))
    }

    pub async fn unregister_listener(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<UnregisterListenerResponse> {
        self.store_for(request)?.delete_subscription(&id).await?;
        Ok(UnregisterListenerResponse::NoContent)
    }

    pub async fn list_hub(&self, request: &Request) -> poem::Result<ListHubResponse> {
        let subscriptions = self.store_for(request)?.subscriptions().await?;
        Ok(ListHubResponse::Ok(JsonBody(
            subscriptions.into_iter().map(subscription_body).collect(),
        )))
    }

    pub async fn retrieve_hub(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<RetrieveHubResponse> {
        let subscription = self.store_for(request)?.subscription(&id).await?;
        Ok(RetrieveHubResponse::Ok(JsonBody(subscription_body(
            subscription,
        ))))
    }

    pub async fn list_hub_delivery(
        &self,
        request: &Request,
        id: String,
        status: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListHubDeliveryResponse> {
        use crate::store::delivery::{DEAD, DELIVERED, PENDING};
        if let Some(s) = &status {
            if ![PENDING, DELIVERED, DEAD].contains(&s.as_str()) {
                return Err(Error::BadRequest(format!(
                    "status must be pending, delivered or dead, not {s:?}"
                ))
                .into());
            }
        }
        let store = self.store_for(request)?;
        store.subscription(&id).await?;
        let (offset, limit) = paging(&self.settings, offset, limit)?;
        let deliveries = store
            .deliveries(&id, status.as_deref(), offset, limit)
            .await?;
        Ok(ListHubDeliveryResponse::Ok(JsonBody(
            deliveries.into_iter().map(delivery_body).collect(),
        )))
    }

    pub async fn redrive_hub(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<RedriveHubResponse> {
        let store = self.store_for(request)?;
        store.subscription(&id).await?;
        let redriven = store.redrive(&id).await?;
        Ok(RedriveHubResponse::Ok(JsonBody(
            Document::<RedriveResult>::from_json(object(json!({ "redriven": redriven }))),
        )))
    }
}
