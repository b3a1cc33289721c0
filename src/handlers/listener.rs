//! `/listener/*`: this server as the client side of another one's events. Each endpoint checks
//! the event against its schema, keeps it, and `GET /listener/event` (an extension) reads the
//! kept events back.

use super::representation::{base_url, link_header, paging};
use super::Handlers;
use crate::error::Error;
use crate::generated::endpoints::*;
use crate::generated::models::{self, EventSubscription};
use crate::model::document::Document;
use crate::model::document::JsonBody;
use crate::model::scalar::Integer;
use poem::Request;
use serde_json::{Map, Value};

impl Handlers {
    /// Keeps one received event of `event_type`; answers the record as an `EventSubscription`
    /// (the shape the standard gives this response): its id and the listener's URL.
    async fn receive(
        &self,
        request: &Request,
        event_type: &str,
        event: Map<String, Value>,
    ) -> Result<Document<EventSubscription>, Error> {
        if let Some(sent) = event.get("eventType").and_then(Value::as_str) {
            if sent != event_type {
                return Err(Error::BadRequest(format!(
                    "this listener takes {event_type}, not {sent}"
                )));
            }
        }
        let id = self
            .store_for(request)?
            .record_received_event(event_type, event)
            .await?;
        let mut answer = Map::new();
        answer.insert("id".into(), Value::String(id));
        let path = request.uri().path();
        let listener = path
            .find("/listener/")
            .map_or(path, |i| &path[i..])
            .to_string();
        answer.insert(
            "callback".into(),
            Value::String(format!("{}{listener}", base_url(&self.settings, request))),
        );
        Ok(Document::from_json(answer))
    }

    pub async fn list_received_event(
        &self,
        request: &Request,
        event_type: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListReceivedEventResponse> {
        let paged = offset.is_some() || limit.is_some();
        let (offset, limit) = paging(&self.settings, offset, limit)?;
        let (events, total) = self
            .store_for(request)?
            .received_events(event_type.as_deref(), offset, limit)
            .await?;
        let items: Vec<Document<models::Any>> = events
            .into_iter()
            .filter_map(|e| match e {
                Value::Object(map) => Some(Document::from_json(map)),
                _ => None,
            })
            .collect();
        let count = items.len() as u64;
        let link = link_header(&self.settings, request, offset, limit, count, total);
        let headers = (
            Some(Integer(count as i64)),
            Some(Integer(total as i64)),
            link,
        );
        Ok(if paged && count < total {
            ListReceivedEventResponse::PartialContent(
                JsonBody(items),
                headers.0,
                headers.1,
                headers.2,
            )
        } else {
            ListReceivedEventResponse::Ok(JsonBody(items), headers.0, headers.1, headers.2)
        })
    }
}

/// One handler per listener operation: they differ only in the event they take.
macro_rules! listeners {
    ($($handler:ident($event:ident) -> $response:ident;)*) => {
        impl Handlers {
            $(
                pub async fn $handler(
                    &self,
                    request: &Request,
                    body: Document<models::$event>,
                ) -> poem::Result<$response> {
                    let answer = self
                        .receive(request, stringify!($event), body.into_json())
                        .await?;
                    Ok($response::Created(JsonBody(answer)))
                }
            )*
        }
    };
}

listeners! {
    listen_to_usage_create_event(UsageCreateEvent) -> ListenToUsageCreateEventResponse;
    listen_to_usage_attribute_value_change_event(UsageAttributeValueChangeEvent)
        -> ListenToUsageAttributeValueChangeEventResponse;
    listen_to_usage_delete_event(UsageDeleteEvent) -> ListenToUsageDeleteEventResponse;
    listen_to_usage_state_change_event(UsageStateChangeEvent)
        -> ListenToUsageStateChangeEventResponse;
    listen_to_usage_specification_create_event(UsageSpecificationCreateEvent)
        -> ListenToUsageSpecificationCreateEventResponse;
    listen_to_usage_specification_attribute_value_change_event(
        UsageSpecificationAttributeValueChangeEvent
    ) -> ListenToUsageSpecificationAttributeValueChangeEventResponse;
    listen_to_usage_specification_delete_event(UsageSpecificationDeleteEvent)
        -> ListenToUsageSpecificationDeleteEventResponse;
}
