//! Subscriptions unregistered whose deliveries are not all removed yet: unregistering removes
//! only the `hub` row and records its id here; retention then removes the deliveries in small
//! batches and drops the row once none is left.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "removed_subscription")]
pub struct Model {
    /// The subscription's (former) `hub.id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub removed_at: DateTimeUtc,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
