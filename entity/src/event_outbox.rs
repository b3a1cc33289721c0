//! The transactional outbox: one row per event, written in the same transaction as the change
//! it reports, so a committed change always has its event. The dispatcher fans each row out to
//! the matching subscriptions (`delivery`); `event_pending` lists the rows it has yet to take.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_outbox")]
pub struct Model {
    /// Commit-ordered enough for per-resource order: a resource's later change always gets a
    /// higher number (its transaction starts after the earlier one committed).
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The event's `eventId`.
    #[sea_orm(unique)]
    pub id: String,
    pub event_type: String,
    /// `usage` or `usageSpecification`.
    pub resource_type: String,
    pub resource_id: String,
    pub event_time: DateTimeUtc,
    /// The whole event as it is POSTed to listeners: JSON text, kept as written (not `jsonb`;
    /// nothing queries inside it).
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
