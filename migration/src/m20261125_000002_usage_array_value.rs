//! The array-value index of usages: one row per distinct string value of an indexed array
//! attribute (`relatedParty.id`, `ratedProductUsage.productRef.id`) per usage, with the
//! usage's `usageDate`, so `relatedParty.id=P&usageDate.gte=..&sort=-usageDate` is one range
//! scan of `(path, value, usage_date)` instead of a JSON walk over every usage of the period.
//! The store keeps it in step with the document in the write's own transaction.

use sea_orm_migration::async_trait;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UsageArrayValue {
    Table,
    UsageId,
    Path,
    Value,
    UsageDate,
}

/// The attributes indexed when this migration ran, as (array, key path inside an element).
/// Later changes to the list get a migration of their own.
const INDEXED: [(&str, &str); 2] = [
    ("relatedParty", "id"),
    ("ratedProductUsage", "productRef.id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageArrayValue::Table)
                    .if_not_exists()
                    .col(string(UsageArrayValue::UsageId))
                    .col(string(UsageArrayValue::Path))
                    .col(text(UsageArrayValue::Value))
                    .col(timestamp_with_time_zone_null(UsageArrayValue::UsageDate))
                    // Also the index that finds a usage's rows when it changes or goes.
                    .primary_key(
                        Index::create()
                            .col(UsageArrayValue::UsageId)
                            .col(UsageArrayValue::Path)
                            .col(UsageArrayValue::Value),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_array_value_lookup")
                    .table(UsageArrayValue::Table)
                    .if_not_exists()
                    .col(UsageArrayValue::Path)
                    .col(UsageArrayValue::Value)
                    .col(UsageArrayValue::UsageDate)
                    .col(UsageArrayValue::UsageId)
                    .to_owned(),
            )
            .await?;
        // Usages stored before this migration get their rows too.
        let db = manager.get_connection();
        for (array, key) in INDEXED {
            let path = format!("{array}.{key}");
            let sql = match manager.get_database_backend() {
                DatabaseBackend::Postgres => {
                    // `#>` takes the key path as a text array: '{productRef,id}'.
                    let keys = key.replace('.', ",");
                    format!(
                        "INSERT INTO usage_array_value (usage_id, path, value, usage_date) \
                         SELECT DISTINCT u.id, '{path}', e.value #>> '{{{keys}}}', u.usage_date \
                         FROM usage u, jsonb_array_elements(CASE WHEN jsonb_typeof(u.document -> '{array}') = 'array' \
                         THEN u.document -> '{array}' ELSE '[]'::jsonb END) AS e(value) \
                         WHERE jsonb_typeof(e.value #> '{{{keys}}}') = 'string' ON CONFLICT DO NOTHING"
                    )
                }
                _ => format!(
                    "INSERT OR IGNORE INTO usage_array_value (usage_id, path, value, usage_date) \
                     SELECT DISTINCT u.id, '{path}', json_extract(e.value, '$.{key}'), u.usage_date \
                     FROM usage u, json_each(u.document, '$.{array}') AS e \
                     WHERE json_type(e.value, '$.{key}') = 'text'"
                ),
            };
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageArrayValue::Table).to_owned())
            .await
    }
}
