//! Import and export jobs: their status, counts and first errors (see `store::jobs`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_job")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `import` or `export`.
    pub kind: String,
    /// `notStarted`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// The format of the rows: `application/x-ndjson`, `application/json` or `text/csv`.
    pub content_type: String,
    /// An import: the base of the `href` of the usages it creates.
    pub href_prefix: Option<String>,
    /// An export: its query, in the list grammar.
    pub query: Option<String>,
    pub rows_read: i64,
    pub rows_created: i64,
    pub rows_skipped: i64,
    pub rows_rejected: i64,
    /// The first errors, a JSON array of `{line, attribute, message}`.
    pub errors: String,
    /// Why a failed job stopped.
    pub message: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    /// An import: the rows it puts in `usageDate` order before storing them (`bulk::order`);
    /// none, the file's order.
    pub order_rows: Option<i64>,
    /// The tenant the row belongs to; the empty string is the one tenant of a server without
    /// tenancy.
    pub tenant: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
