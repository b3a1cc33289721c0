//! Authentication and signed callbacks.
//!
//! - `api_key`: the API keys of machine clients, each stored only as the SHA-256 of the key
//!   (the key is random and long, so a plain hash is enough), with its scopes (space-separated)
//!   and a tenant for later. Revoking sets `revoked_at`; the row stays so the server knows keys
//!   were issued and keeps authentication on.
//! - `hub.secret`: the secret a subscription's callbacks are signed with (Standard Webhooks).
//!   It has to be kept as is to sign; subscriptions registered before have none and are sent
//!   unsigned.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ApiKey {
    Table,
    Id,
    Name,
    KeyHash,
    Scopes,
    Tenant,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Hub {
    Table,
    Secret,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKey::Table)
                    .if_not_exists()
                    .col(string(ApiKey::Id).primary_key())
                    .col(string(ApiKey::Name))
                    .col(string_uniq(ApiKey::KeyHash))
                    .col(string(ApiKey::Scopes))
                    .col(string_null(ApiKey::Tenant))
                    .col(timestamp_with_time_zone(ApiKey::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKey::RevokedAt))
                    .to_owned(),
            )
            .await?;
        if !manager.has_column("hub", "secret").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Hub::Table)
                        .add_column(string_null(Hub::Secret))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Hub::Table)
                    .drop_column(Hub::Secret)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ApiKey::Table).to_owned())
            .await
    }
}
