//! `bulk_job`: the import and export jobs (`/importJob`, `/exportJob`), kept so their status
//! and counts outlive the request that started them and the process that ran them.
//!
//! An import's counts are updated in the transaction that stores its rows, so what a job says
//! it created is exactly what is stored. `updated_at` is the runner's heartbeat: a running job
//! whose heartbeat stops is failed (its instance stopped).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum BulkJob {
    Table,
    Id,
    Kind,
    Status,
    ContentType,
    HrefPrefix,
    Query,
    RowsRead,
    RowsCreated,
    RowsSkipped,
    RowsRejected,
    Errors,
    Message,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

const INDEX: &str = "idx_bulk_job_kind_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BulkJob::Table)
                    .if_not_exists()
                    .col(string(BulkJob::Id).primary_key())
                    .col(string(BulkJob::Kind))
                    .col(string(BulkJob::Status))
                    .col(string(BulkJob::ContentType))
                    .col(text_null(BulkJob::HrefPrefix))
                    .col(text_null(BulkJob::Query))
                    .col(big_integer(BulkJob::RowsRead))
                    .col(big_integer(BulkJob::RowsCreated))
                    .col(big_integer(BulkJob::RowsSkipped))
                    .col(big_integer(BulkJob::RowsRejected))
                    .col(text(BulkJob::Errors))
                    .col(text_null(BulkJob::Message))
                    .col(timestamp_with_time_zone(BulkJob::CreatedAt))
                    .col(timestamp_with_time_zone(BulkJob::UpdatedAt))
                    .col(timestamp_with_time_zone_null(BulkJob::CompletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(BulkJob::Table)
                    .col(BulkJob::Kind)
                    .col(BulkJob::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(BulkJob::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(BulkJob::Table).to_owned())
            .await
    }
}
