//! API keys (`tmf635 apikey`), looked up on every request that carries one, so a revoked key is
//! refused at once by every instance.

use super::Store;
use crate::error::Error;
use chrono::Utc;
use entity::api_key;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

impl Store {
    /// Stores a key by its hash; answers the stored row.
    pub async fn create_api_key(
        &self,
        name: String,
        key_hash: String,
        scopes: String,
        tenant: Option<String>,
    ) -> Result<api_key::Model, Error> {
        self.pool()
            .run(|db| async move {
                let model = api_key::Model {
                    id: crate::resource_kind::new_id(),
                    name,
                    key_hash,
                    scopes,
                    tenant,
                    created_at: Utc::now(),
                    revoked_at: None,
                };
                api_key::Entity::insert(api_key::ActiveModel::from(model.clone()))
                    .exec_without_returning(db)
                    .await?;
                Ok(model)
            })
            .await
    }

    /// Every key ever issued, revoked ones included, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<api_key::Model>, Error> {
        self.pool()
            .run(|db| async move {
                Ok(api_key::Entity::find()
                    .order_by_asc(api_key::Column::CreatedAt)
                    .order_by_asc(api_key::Column::Id)
                    .all(db)
                    .await?)
            })
            .await
    }

    /// Whether any key was ever issued (revoked ones count: revoking every key must not turn
    /// authentication off).
    pub async fn api_keys_issued(&self) -> Result<bool, Error> {
        self.pool()
            .run(|db| async move { Ok(api_key::Entity::find().count(db).await? > 0) })
            .await
    }

    /// Whether any key with a tenant was ever issued (it turns tenancy on, see `auth`).
    pub async fn api_keys_with_tenant(&self) -> Result<bool, Error> {
        self.pool()
            .run(|db| async move {
                let with_tenant = api_key::Entity::find()
                    .filter(api_key::Column::Tenant.is_not_null())
                    .count(db)
                    .await?;
                Ok(with_tenant > 0)
            })
            .await
    }

    /// The key with this hash, unless it is revoked.
    pub async fn active_api_key(&self, key_hash: &str) -> Result<Option<api_key::Model>, Error> {
        self.pool()
            .run(|db| async move {
                Ok(api_key::Entity::find()
                    .filter(api_key::Column::KeyHash.eq(key_hash))
                    .filter(api_key::Column::RevokedAt.is_null())
                    .one(db)
                    .await?)
            })
            .await
    }

    /// Revokes a key; NotFound when there is no such key or it is already revoked.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), Error> {
        self.pool()
            .run(|db| async move {
                let revoked = api_key::Entity::update_many()
                    .col_expr(
                        api_key::Column::RevokedAt,
                        sea_orm::sea_query::Expr::value(Utc::now()),
                    )
                    .filter(api_key::Column::Id.eq(id))
                    .filter(api_key::Column::RevokedAt.is_null())
                    .exec(db)
                    .await?;
                if revoked.rows_affected == 0 {
                    return Err(Error::NotFound {
                        resource: "active API key",
                        id: id.to_string(),
                    });
                }
                Ok(())
            })
            .await
    }
}
