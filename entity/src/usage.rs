use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage")]
pub struct Model {
    /// The tenant the usage belongs to (the empty string without tenancy); with `id`, the key:
    /// two tenants may hold usages of the same id (an import keeps ids).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Bumped by every change; writes succeed only on the revision they read (optimistic
    /// concurrency), and the ETag is derived from it.
    pub revision: i64,
    /// Insertion order: the default list order is newest first.
    pub created_at: DateTimeUtc,
    pub usage_date: Option<DateTimeUtc>,
    pub usage_type: Option<String>,
    pub status: Option<String>,
    pub description: Option<String>,
    pub usage_specification_id: Option<String>,
    pub at_type: Option<String>,
    /// The whole Usage as the client sent it (without id and href, which the server owns).
    #[sea_orm(column_type = "JsonBinary")]
    pub document: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
