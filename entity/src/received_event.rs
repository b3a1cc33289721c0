//! Events received on this server's `/listener/*` endpoints, kept so they can be read back
//! (this server can act as the listener of another one).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "received_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub received_at: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub document: Json,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
