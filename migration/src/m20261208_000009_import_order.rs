//! `bulk_job.order_rows`: the rows an import puts in `usageDate` order before storing them
//! (see `bulk::order`). A job records the window it started with, so a resumed job sorts its
//! rows exactly as before and skips exactly the rows it stored; null (jobs recorded before)
//! is the file's order.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BulkJob {
    Table,
    OrderRows,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BulkJob::Table)
                    .add_column(big_integer_null(BulkJob::OrderRows))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BulkJob::Table)
                    .drop_column(BulkJob::OrderRows)
                    .to_owned(),
            )
            .await
    }
}
