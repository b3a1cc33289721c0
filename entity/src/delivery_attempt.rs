//! Every attempt to deliver an event: when, what the callback answered, how long it took.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_attempt")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub delivery_id: String,
    pub attempted_at: DateTimeUtc,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
