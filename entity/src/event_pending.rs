//! The outbox events not yet fanned out to subscriptions: one row per event, inserted with it
//! and deleted by the dispatcher that takes it (see the migration that made it).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_pending")]
pub struct Model {
    /// The event's `event_outbox.seq`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
