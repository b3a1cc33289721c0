//! Event subscriptions (`POST /hub`): stored so they survive restarts and are shared by every
//! instance on the same database.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "hub")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub callback: String,
    pub query: Option<String>,
    pub created_at: DateTimeUtc,
    /// The `whsec_` secret its callbacks are signed with; none for older subscriptions.
    pub secret: Option<String>,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
