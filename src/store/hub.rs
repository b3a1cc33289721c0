//! Event subscriptions.

use super::Store;
use crate::error::Error;
use chrono::Utc;
use entity::{hub, removed_subscription};
use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait, QueryOrder};

impl Store {
    pub async fn create_subscription(
        &self,
        callback: String,
        query: Option<String>,
        secret: String,
    ) -> Result<hub::Model, Error> {
        self.pool()
            .run(|db| async move {
                let model = hub::Model {
                    id: crate::resource_kind::new_id(),
                    callback,
                    query,
                    created_at: Utc::now(),
                    secret: Some(secret),
                };
                hub::Entity::insert(hub::ActiveModel {
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

    /// How many subscriptions there are.
    pub async fn subscription_count(&self) -> Result<u64, Error> {
        self.pool()
            .run(|db| async move { Ok(hub::Entity::find().count(db).await?) })
            .await
    }

    pub async fn subscriptions(&self) -> Result<Vec<hub::Model>, Error> {
        self.pool()
            .run(|db| async move {
                Ok(hub::Entity::find()
                    .order_by_asc(hub::Column::CreatedAt)
                    .order_by_asc(hub::Column::Id)
                    .all(db)
                    .await?)
            })
            .await
    }

    pub async fn subscription(&self, id: &str) -> Result<hub::Model, Error> {
        self.pool()
            .run(|db| async move {
                hub::Entity::find_by_id(id.to_string())
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
        let id = id.to_string();
        self.write(move |txn| {
            Box::pin(async move {
                let deleted = hub::Entity::delete_by_id(id.clone()).exec(txn).await?;
                if deleted.rows_affected == 0 {
                    return Err(Error::NotFound {
                        resource: "hub",
                        id,
                    });
                }
                removed_subscription::Entity::insert(removed_subscription::ActiveModel {
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
