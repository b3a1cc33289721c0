//! Event subscriptions, each of a tenant: it is sent only that tenant's events (see
//! `delivery::dispatch_events`).

use super::tenant::TenantStore;
use crate::error::Error;
use chrono::Utc;
use entity::{hub, removed_subscription};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

impl TenantStore {
    pub async fn create_subscription(
        &self,
        callback: String,
        query: Option<String>,
        secret: String,
    ) -> Result<hub::Model, Error> {
        let tenant = self.name();
        self.store
            .pool()
            .run(|db| async move {
                let model = hub::Model {
                    tenant,
                    id: crate::resource_kind::new_id(),
                    callback,
                    query,
                    created_at: Utc::now(),
                    secret: Some(secret),
                };
                hub::Entity::insert(hub::ActiveModel {
                    tenant: Set(model.tenant.clone()),
                    id: Set(model.id.clone()),
                    callback: Set(model.callback.clone()),
                    query: Set(model.query.clone()),
                    created_at: Set(model.created_at),
                    secret: Set(model.secret.clone()),
                })
                .exec_without_returning(db)
                .await?;
                Ok(model)
            })
            .await
    }

    /// The tenant's subscriptions.
    fn mine(&self) -> sea_orm::Select<hub::Entity> {
        hub::Entity::find().filter(hub::Column::Tenant.eq(self.tenant.as_str()))
    }

    /// How many subscriptions the tenant has.
    pub async fn subscription_count(&self) -> Result<u64, Error> {
        self.store
            .pool()
            .run(|db| async move { Ok(self.mine().count(db).await?) })
            .await
    }

    pub async fn subscriptions(&self) -> Result<Vec<hub::Model>, Error> {
        self.store
            .pool()
            .run(|db| async move {
                Ok(self
                    .mine()
                    .order_by_asc(hub::Column::CreatedAt)
                    .order_by_asc(hub::Column::Id)
                    .all(db)
                    .await?)
            })
            .await
    }

    pub async fn subscription(&self, id: &str) -> Result<hub::Model, Error> {
        self.store
            .pool()
            .run(|db| async move {
                self.mine()
                    .filter(hub::Column::Id.eq(id))
                    .one(db)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        resource: "hub",
                        id: id.to_string(),
                    })
            })
            .await
    }

    /// Removes a subscription: nothing more is sent to it. Only its `hub` row goes now, with
    /// a record of its id in `removed_subscription`; retention removes its deliveries (there
    /// may be many) in small batches afterwards. Until then the queue skips them.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), Error> {
        let (tenant, id) = (self.name(), id.to_string());
        self.store
            .write(move |txn| {
                Box::pin(async move {
                    let deleted = hub::Entity::delete_many()
                        .filter(hub::Column::Tenant.eq(&tenant))
                        .filter(hub::Column::Id.eq(&id))
                        .exec(txn)
                        .await?;
                    if deleted.rows_affected == 0 {
                        return Err(Error::NotFound {
                            resource: "hub",
                            id,
                        });
                    }
                    removed_subscription::Entity::insert(removed_subscription::ActiveModel {
                        tenant: Set(tenant),
                        id: Set(id),
                        removed_at: Set(Utc::now()),
                    })
                    .exec_without_returning(txn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}
