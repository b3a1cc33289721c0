//! The transactional outbox: one row per event, written in the same transaction as the change
//! it reports, so a committed change always has its event. Delivery reads from here.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_outbox")]
pub struct Model {
    /// The event's `eventId`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_type: String,
    /// `usage` or `usageSpecification`.
    pub resource_type: String,
    pub resource_id: String,
    pub event_time: DateTimeUtc,
    /// The whole event as it will be POSTed to listeners.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
