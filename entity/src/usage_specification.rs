use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_specification")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Bumped by every change; writes succeed only on the revision they read (optimistic
    /// concurrency), and the ETag is derived from it.
    pub revision: i64,
    /// Insertion order: the default list order is newest first.
    pub created_at: DateTimeUtc,
    pub name: Option<String>,
    pub lifecycle_status: Option<String>,
    pub version: Option<String>,
    pub last_update: Option<DateTimeUtc>,
    pub description: Option<String>,
    pub at_type: Option<String>,
    /// The whole UsageSpecification as stored (without id and href, which the server owns).
    #[sea_orm(column_type = "JsonBinary")]
    pub document: Json,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
