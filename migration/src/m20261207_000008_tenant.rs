//! Tenants: every row carries the tenant it belongs to (`tenant`, the empty string for the one
//! implicit tenant when tenancy is off, which every existing row gets).
//!
//! - `usage` and `usage_array_value` are keyed by `(tenant, id)`: an import keeps the ids of
//!   its rows, so two tenants may hold a usage of the same id, and neither may learn of the
//!   other's. SQLite cannot change a primary key in place, so both tables are rebuilt (renamed,
//!   created anew, copied, dropped): the same steps on every backend.
//! - The other tables get a `tenant` column; their ids are made by the server and unique.
//!   `event_pending` does not: it only points at outbox rows, which carry it.
//! - Indexes that list queries use lead with the tenant, then the columns they had, so a list
//!   (`tenant = ?` and the rest) walks the same shapes as before. Indexes only retention uses
//!   (across tenants) stay as they were.

use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// Column names repeat the table's name by design (usage_date, usage_type...).
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden, Clone, Copy)]
enum Usage {
    Table,
    Tenant,
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
enum UsageArrayValue {
    Table,
    Tenant,
    UsageId,
    Path,
    Value,
    UsageDate,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tables {
    UsageSpecification,
    EventOutbox,
    Hub,
    Delivery,
    DeliveryAttempt,
    ReceivedEvent,
    BulkJob,
    RemovedSubscription,
}

#[derive(DeriveIden, Clone, Copy)]
enum Columns {
    Tenant,
    Id,
    CreatedAt,
    Name,
    LifecycleStatus,
    EventType,
    ReceivedAt,
    Kind,
}

/// The tables that only get the column.
const WITH_COLUMN: [Tables; 8] = [
    Tables::UsageSpecification,
    Tables::EventOutbox,
    Tables::Hub,
    Tables::Delivery,
    Tables::DeliveryAttempt,
    Tables::ReceivedEvent,
    Tables::BulkJob,
    Tables::RemovedSubscription,
];

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

fn drop_index<T: Iden + 'static>(name: &str, table: T) -> IndexDropStatement {
    Index::drop().name(name).table(table).to_owned()
}

const USAGE_INDEXES: [(&str, &[Usage]); 5] = [
    ("idx_usage_created", &[Usage::CreatedAt, Usage::Id]),
    ("idx_usage_date", &[Usage::UsageDate, Usage::Id]),
    ("idx_usage_status", &[Usage::Status]),
    ("idx_usage_type", &[Usage::UsageType]),
    ("idx_usage_spec", &[Usage::UsageSpecificationId]),
];

const ARRAY_VALUE_LOOKUP: &str = "idx_usage_array_value_lookup";
const ARRAY_VALUE_COLUMNS: [UsageArrayValue; 4] = [
    UsageArrayValue::Path,
    UsageArrayValue::Value,
    UsageArrayValue::UsageDate,
    UsageArrayValue::UsageId,
];

/// The other indexes that gain the tenant in front: (name, table, columns after the tenant).
const TENANT_INDEXES: [(&str, Tables, &[Columns]); 5] = [
    (
        "idx_usage_specification_created",
        Tables::UsageSpecification,
        &[Columns::CreatedAt, Columns::Id],
    ),
    (
        "idx_usage_specification_name",
        Tables::UsageSpecification,
        &[Columns::Name],
    ),
    (
        "idx_usage_specification_lifecycle",
        Tables::UsageSpecification,
        &[Columns::LifecycleStatus],
    ),
    (
        "idx_received_event_type",
        Tables::ReceivedEvent,
        &[Columns::EventType, Columns::ReceivedAt],
    ),
    (
        "idx_bulk_job_kind_created",
        Tables::BulkJob,
        &[Columns::Kind, Columns::CreatedAt],
    ),
];

/// A tenant's received events newest first (retention keeps its own index on `received_at`).
const RECEIVED_BY_TENANT: &str = "idx_received_event_tenant";

fn with_tenant<C: Iden + Clone + 'static>(tenant: C, columns: &[C]) -> Vec<C> {
    std::iter::once(tenant)
        .chain(columns.iter().cloned())
        .collect()
}

/// The rebuilt tables' names until they replace the old ones. They are created beside the old
/// ones and renamed after, so every name the old table owned (PostgreSQL names its primary
/// key's index after the table) goes with it.
const USAGE_NEW: &str = "usage_new";
const ARRAY_VALUE_NEW: &str = "usage_array_value_new";

/// The SQL text of a schema statement for `backend`.
fn sql<S: SchemaStatementBuilder>(backend: DatabaseBackend, statement: &S) -> String {
    match backend {
        DatabaseBackend::Postgres => statement.to_string(PostgresQueryBuilder),
        DatabaseBackend::MySql => statement.to_string(MysqlQueryBuilder),
        DatabaseBackend::Sqlite => statement.to_string(SqliteQueryBuilder),
    }
}

/// Every step, in order. They run as one batch on one connection: on SQLite another pooled
/// connection may still hold the schema as it was before a step (a table dropped, an index
/// not yet made), and would see the next step against it.
fn steps(backend: DatabaseBackend) -> Vec<String> {
    let mut steps = Vec::new();
    for table in WITH_COLUMN {
        let add = Table::alter()
            .table(table)
            .add_column(string(Columns::Tenant).default(""))
            .to_owned();
        steps.push(sql(backend, &add));
    }
    for (name, table, columns) in TENANT_INDEXES {
        steps.push(sql(backend, &drop_index(name, table)));
        let columns = with_tenant(Columns::Tenant, columns);
        steps.push(sql(backend, &index(name, table, &columns)));
    }
    steps.push(sql(
        backend,
        &index(
            RECEIVED_BY_TENANT,
            Tables::ReceivedEvent,
            &[Columns::Tenant, Columns::ReceivedAt],
        ),
    ));

    // usage: rebuilt with the key (tenant, id).
    for (name, _) in USAGE_INDEXES {
        steps.push(sql(backend, &drop_index(name, Usage::Table)));
    }
    let usage = Table::create()
        .table(Alias::new(USAGE_NEW))
        .col(string(Usage::Tenant))
        .col(string(Usage::Id))
        .col(big_integer(Usage::Revision))
        .col(timestamp_with_time_zone(Usage::CreatedAt))
        .col(timestamp_with_time_zone_null(Usage::UsageDate))
        .col(string_null(Usage::UsageType))
        .col(string_null(Usage::Status))
        .col(text_null(Usage::Description))
        .col(string_null(Usage::UsageSpecificationId))
        .col(string_null(Usage::AtType))
        .col(json_binary(Usage::Document))
        .primary_key(Index::create().col(Usage::Tenant).col(Usage::Id))
        .to_owned();
    steps.push(sql(backend, &usage));
    steps.push(format!(
        r#"INSERT INTO "{USAGE_NEW}" ("tenant", "id", "revision", "created_at", "usage_date", "usage_type", "status", "description", "usage_specification_id", "at_type", "document") SELECT '', "id", "revision", "created_at", "usage_date", "usage_type", "status", "description", "usage_specification_id", "at_type", "document" FROM "usage""#
    ));
    replace(&mut steps, "usage", USAGE_NEW);
    for (name, columns) in USAGE_INDEXES {
        let columns = with_tenant(Usage::Tenant, columns);
        steps.push(sql(backend, &index(name, Usage::Table, &columns)));
    }

    // usage_array_value: rebuilt with the key (tenant, usage id, path, value).
    steps.push(sql(
        backend,
        &drop_index(ARRAY_VALUE_LOOKUP, UsageArrayValue::Table),
    ));
    let array_value = Table::create()
        .table(Alias::new(ARRAY_VALUE_NEW))
        .col(string(UsageArrayValue::Tenant))
        .col(string(UsageArrayValue::UsageId))
        .col(string(UsageArrayValue::Path))
        .col(text(UsageArrayValue::Value))
        .col(timestamp_with_time_zone_null(UsageArrayValue::UsageDate))
        // Also the index that finds a usage's rows when it changes or goes.
        .primary_key(
            Index::create()
                .col(UsageArrayValue::Tenant)
                .col(UsageArrayValue::UsageId)
                .col(UsageArrayValue::Path)
                .col(UsageArrayValue::Value),
        )
        .to_owned();
    steps.push(sql(backend, &array_value));
    steps.push(format!(
        r#"INSERT INTO "{ARRAY_VALUE_NEW}" ("tenant", "usage_id", "path", "value", "usage_date") SELECT '', "usage_id", "path", "value", "usage_date" FROM "usage_array_value""#
    ));
    replace(&mut steps, "usage_array_value", ARRAY_VALUE_NEW);
    let columns = with_tenant(UsageArrayValue::Tenant, &ARRAY_VALUE_COLUMNS);
    steps.push(sql(
        backend,
        &index(ARRAY_VALUE_LOOKUP, UsageArrayValue::Table, &columns),
    ));
    steps
}

/// Drops `table` and gives `new` its name.
fn replace(steps: &mut Vec<String>, table: &str, new: &str) {
    steps.push(format!(r#"DROP TABLE "{table}""#));
    steps.push(format!(r#"ALTER TABLE "{new}" RENAME TO "{table}""#));
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut batch = steps(backend).join(";\n");
        // On SQLite the batch is a transaction of its own (PostgreSQL runs every migration in
        // one), so a failure leaves the schema as it was.
        if backend == DatabaseBackend::Sqlite {
            batch = format!("BEGIN;\n{batch};\nCOMMIT");
        }
        manager.get_connection().execute_unprepared(&batch).await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Going back would merge the tenants' rows into one, and usages of the same id in two
        // tenants cannot be merged.
        Err(DbErr::Migration(
            "tenancy cannot be undone: rows of several tenants cannot be merged into one".into(),
        ))
    }
}
