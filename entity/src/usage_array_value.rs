use sea_orm::entity::prelude::*;

/// The array-value index of usages: one row per distinct string value of an indexed array
/// attribute of a usage (e.g. path `relatedParty.id`, value `party-7`), with the usage's
/// `usageDate` so a filter on the value and a date range is one index range scan. Written by
/// the store in the same transaction as the usage; never read for the document itself.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_array_value")]
pub struct Model {
    /// The usage's tenant (see `usage::Model::tenant`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub usage_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub path: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub value: String,
    pub usage_date: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
