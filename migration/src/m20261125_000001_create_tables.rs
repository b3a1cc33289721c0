use sea_orm_migration::async_trait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// Column names repeat the table's name by design (usage_date, usage_type...).
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden, Clone, Copy)]
enum Usage {
    Table,
    Id,
    Revision,
    CreatedAt,
    UsageDate,
    UsageType,
    Status,
    Description,
    UsageSpecificationId,
    AtType,
    Document,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageSpecification {
    Table,
    Id,
    Revision,
    CreatedAt,
    Name,
    LifecycleStatus,
    Version,
    LastUpdate,
    Description,
    AtType,
    Document,
}

#[derive(DeriveIden, Clone, Copy)]
enum Hub {
    Table,
    Id,
    Callback,
    Query,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ReceivedEvent {
    Table,
    Id,
    EventType,
    EventId,
    ReceivedAt,
    Document,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventOutbox {
    Table,
    Seq,
    Id,
    Dispatched,
    EventType,
    ResourceType,
    ResourceId,
    EventTime,
    Payload,
}

#[derive(DeriveIden, Clone, Copy)]
enum Delivery {
    Table,
    Id,
    SubscriptionId,
    OutboxSeq,
    EventId,
    EventType,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseOwner,
    LeaseUntil,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum DeliveryAttempt {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    HttpStatus,
    Error,
    DurationMs,
}

/// `CREATE INDEX name ON table (columns...)`.
fn index<T: Iden + 'static, C: Iden + Clone + 'static>(
    name: &str,
    table: T,
    columns: &[C],
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column.clone());
    }
    index
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Usage::Table)
                    .if_not_exists()
                    .col(string(Usage::Id).primary_key())
                    .col(big_integer(Usage::Revision))
                    .col(timestamp_with_time_zone(Usage::CreatedAt))
                    .col(timestamp_with_time_zone_null(Usage::UsageDate))
                    .col(string_null(Usage::UsageType))
                    .col(string_null(Usage::Status))
                    .col(text_null(Usage::Description))
                    .col(string_null(Usage::UsageSpecificationId))
                    .col(string_null(Usage::AtType))
                    .col(json_binary(Usage::Document))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_usage_created", vec![Usage::CreatedAt, Usage::Id]),
            ("idx_usage_date", vec![Usage::UsageDate, Usage::Id]),
            ("idx_usage_status", vec![Usage::Status]),
            ("idx_usage_type", vec![Usage::UsageType]),
            ("idx_usage_spec", vec![Usage::UsageSpecificationId]),
        ] {
            manager
                .create_index(index(name, Usage::Table, &columns))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(UsageSpecification::Table)
                    .if_not_exists()
                    .col(string(UsageSpecification::Id).primary_key())
                    .col(big_integer(UsageSpecification::Revision))
                    .col(timestamp_with_time_zone(UsageSpecification::CreatedAt))
                    .col(string_null(UsageSpecification::Name))
                    .col(string_null(UsageSpecification::LifecycleStatus))
                    .col(string_null(UsageSpecification::Version))
                    .col(timestamp_with_time_zone_null(
                        UsageSpecification::LastUpdate,
                    ))
                    .col(text_null(UsageSpecification::Description))
                    .col(string_null(UsageSpecification::AtType))
                    .col(json_binary(UsageSpecification::Document))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_usage_specification_created",
                vec![UsageSpecification::CreatedAt, UsageSpecification::Id],
            ),
            (
                "idx_usage_specification_name",
                vec![UsageSpecification::Name],
            ),
            (
                "idx_usage_specification_lifecycle",
                vec![UsageSpecification::LifecycleStatus],
            ),
        ] {
            manager
                .create_index(index(name, UsageSpecification::Table, &columns))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Hub::Table)
                    .if_not_exists()
                    .col(string(Hub::Id).primary_key())
                    .col(text(Hub::Callback))
                    .col(text_null(Hub::Query))
                    .col(timestamp_with_time_zone(Hub::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReceivedEvent::Table)
                    .if_not_exists()
                    .col(string(ReceivedEvent::Id).primary_key())
                    .col(string(ReceivedEvent::EventType))
                    .col(string_null(ReceivedEvent::EventId))
                    .col(timestamp_with_time_zone(ReceivedEvent::ReceivedAt))
                    .col(json_binary(ReceivedEvent::Document))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_received_event_type",
                ReceivedEvent::Table,
                &[ReceivedEvent::EventType, ReceivedEvent::ReceivedAt],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventOutbox::Table)
                    .if_not_exists()
                    .col(big_integer(EventOutbox::Seq).primary_key().auto_increment())
                    .col(string_uniq(EventOutbox::Id))
                    .col(string(EventOutbox::EventType))
                    .col(string(EventOutbox::ResourceType))
                    .col(string(EventOutbox::ResourceId))
                    .col(timestamp_with_time_zone(EventOutbox::EventTime))
                    .col(boolean(EventOutbox::Dispatched).default(false))
                    .col(json_binary(EventOutbox::Payload))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_event_outbox_pending",
                EventOutbox::Table,
                &[EventOutbox::Dispatched, EventOutbox::Seq],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Delivery::Table)
                    .if_not_exists()
                    .col(string(Delivery::Id).primary_key())
                    .col(string(Delivery::SubscriptionId))
                    .col(big_integer(Delivery::OutboxSeq))
                    .col(string(Delivery::EventId))
                    .col(string(Delivery::EventType))
                    .col(string(Delivery::Status))
                    .col(integer(Delivery::Attempts))
                    .col(timestamp_with_time_zone(Delivery::NextAttemptAt))
                    .col(string_null(Delivery::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Delivery::LeaseUntil))
                    .col(text_null(Delivery::LastError))
                    .col(timestamp_with_time_zone(Delivery::CreatedAt))
                    .col(timestamp_with_time_zone_null(Delivery::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_delivery_queue",
                Delivery::Table,
                &[
                    Delivery::SubscriptionId,
                    Delivery::Status,
                    Delivery::OutboxSeq,
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_delivery_due",
                Delivery::Table,
                &[Delivery::Status, Delivery::NextAttemptAt],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeliveryAttempt::Table)
                    .if_not_exists()
                    .col(string(DeliveryAttempt::Id).primary_key())
                    .col(string(DeliveryAttempt::DeliveryId))
                    .col(timestamp_with_time_zone(DeliveryAttempt::AttemptedAt))
                    .col(integer_null(DeliveryAttempt::HttpStatus))
                    .col(text_null(DeliveryAttempt::Error))
                    .col(big_integer(DeliveryAttempt::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_delivery_attempt_delivery",
                DeliveryAttempt::Table,
                &[DeliveryAttempt::DeliveryId],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeliveryAttempt::Table.into_iden(),
            Delivery::Table.into_iden(),
            EventOutbox::Table.into_iden(),
            ReceivedEvent::Table.into_iden(),
            Hub::Table.into_iden(),
            UsageSpecification::Table.into_iden(),
            Usage::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
