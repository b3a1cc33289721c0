//! Events received on the `/listener/*` endpoints.

use super::tenant::TenantStore;
use crate::error::Error;
use chrono::Utc;
use entity::received_event;
use sea_orm::sea_query::Order;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Map, Value};

impl TenantStore {
    /// Keeps a received event of the tenant; answers the id it is stored under.
    pub async fn record_received_event(
        &self,
        event_type: &str,
        document: Map<String, Value>,
    ) -> Result<String, Error> {
        let tenant = self.name();
        self.store
            .pool()
            .run(|db| async move {
                let id = crate::resource_kind::new_id();
                let event_id = document
                    .get("eventId")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                received_event::Entity::insert(received_event::ActiveModel {
                    tenant: Set(tenant),
                    id: Set(id.clone()),
                    event_type: Set(event_type.to_string()),
                    event_id: Set(event_id),
                    received_at: Set(Utc::now()),
                    document: Set(Value::Object(document)),
                })
                .exec_without_returning(db)
                .await?;
                Ok(id)
            })
            .await
    }

    /// The tenant's received events, newest first, optionally of one type; with the total
    /// count.
    pub async fn received_events(
        &self,
        event_type: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Value>, u64), Error> {
        self.store
            .pool()
            .search(|db| async move {
                let mut select = received_event::Entity::find()
                    .filter(received_event::Column::Tenant.eq(self.tenant.as_str()));
                if let Some(event_type) = event_type {
                    select = select.filter(received_event::Column::EventType.eq(event_type));
                }
                let total = select.clone().count(db).await?;
                let rows = select
                    .order_by(received_event::Column::ReceivedAt, Order::Desc)
                    .order_by(received_event::Column::Id, Order::Desc)
                    .offset(offset)
                    .limit(limit)
                    .all(db)
                    .await?;
                Ok((rows.into_iter().map(|r| r.document).collect(), total))
            })
            .await
    }
}
