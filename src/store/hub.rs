//! Event subscriptions.

use super::Store;
use crate::error::Error;
use chrono::Utc;
use entity::hub;
use sea_orm::{ActiveValue::Set, EntityTrait};

impl Store {
    pub async fn create_subscription(
        &self,
        callback: String,
        query: Option<String>,
    ) -> Result<hub::Model, Error> {
        let model = hub::Model {
            id: uuid::Uuid::new_v4().to_string(),
            callback,
            query,
            created_at: Utc::now(),
        };
        hub::Entity::insert(hub::ActiveModel {
            id: Set(model.id.clone()),
            callback: Set(model.callback.clone()),
            query: Set(model.query.clone()),
            created_at: Set(model.created_at),
        })
        .exec_without_returning(self.db())
        .await?;
        Ok(model)
    }

    pub async fn delete_subscription(&self, id: &str) -> Result<(), Error> {
        let deleted = hub::Entity::delete_by_id(id.to_string())
            .exec(self.db())
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::NotFound {
                resource: "hub",
                id: id.to_string(),
            });
        }
        Ok(())
    }
}
