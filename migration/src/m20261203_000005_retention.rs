//! Retention: old deliveries, attempts, outbox rows and received events are removed in small
//! batches (see `store::retention`), and unregistering a subscription leaves its deliveries to
//! it.
//!
//! - `removed_subscription`: the subscriptions unregistered whose deliveries retention has not
//!   removed yet (unregistering deletes only the `hub` row and records it here).
//! - `delivery (outbox_seq)`: whether an outbox row still has an unsettled delivery.
//! - `delivery (status, delivered_at)`: the delivered deliveries, oldest first. (The dead ones,
//!   by the time of their last attempt, come from `idx_delivery_due (status, next_attempt_at)`;
//!   a subscription's deliveries from `idx_delivery_queue (subscription_id, ...)`.)
//! - `received_event (received_at)`: the received events, oldest first.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum RemovedSubscription {
    Table,
    Id,
    RemovedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Delivery {
    Table,
    OutboxSeq,
    Status,
    DeliveredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ReceivedEvent {
    Table,
    ReceivedAt,
}

/// (index, table, columns)
fn indexes() -> Vec<(&'static str, DynIden, Vec<DynIden>)> {
    vec![
        (
            "idx_delivery_outbox_seq",
            Delivery::Table.into_iden(),
            vec![Delivery::OutboxSeq.into_iden()],
        ),
        (
            "idx_delivery_settled",
            Delivery::Table.into_iden(),
            vec![
                Delivery::Status.into_iden(),
                Delivery::DeliveredAt.into_iden(),
            ],
        ),
        (
            "idx_received_event_received_at",
            ReceivedEvent::Table.into_iden(),
            vec![ReceivedEvent::ReceivedAt.into_iden()],
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RemovedSubscription::Table)
                    .if_not_exists()
                    .col(string(RemovedSubscription::Id).primary_key())
                    .col(timestamp_with_time_zone(RemovedSubscription::RemovedAt))
                    .to_owned(),
            )
            .await?;
        for (name, table, columns) in indexes() {
            let mut index = Index::create();
            index.name(name).table(table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in indexes() {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(RemovedSubscription::Table).to_owned())
            .await
    }
}
