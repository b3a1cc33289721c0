//! API keys of machine clients (`tmf635 apikey create|list|revoke`): only the key's SHA-256 is
//! stored; the key itself is shown once, when it is created.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub tenant: Option<String>,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
