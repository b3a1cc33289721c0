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

use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
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

/// An index's columns: with the tenant in front (`up`), or as they were.
fn columns<C: Iden + Clone + 'static>(up: bool, tenant: C, columns: &[C]) -> Vec<C> {
    let tenant = up.then_some(tenant);
    tenant.into_iter().chain(columns.iter().cloned()).collect()
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

/// A primary key of `columns`.
fn key<C: Iden + 'static>(columns: Vec<C>) -> IndexCreateStatement {
    let mut key = Index::create();
    for column in columns {
        key.col(column);
    }
    key
}

/// `usage` as a new table, with the tenant (`up`) or without.
fn usage_table(up: bool) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(Alias::new(USAGE_NEW));
    if up {
        table.col(string(Usage::Tenant));
    }
    table
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
        .primary_key(&mut key(columns(up, Usage::Tenant, &[Usage::Id])))
        .to_owned()
}

/// `usage_array_value` as a new table, with the tenant (`up`) or without.
fn array_value_table(up: bool) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(Alias::new(ARRAY_VALUE_NEW));
    if up {
        table.col(string(UsageArrayValue::Tenant));
    }
    let primary = [
        UsageArrayValue::UsageId,
        UsageArrayValue::Path,
        UsageArrayValue::Value,
    ];
    table
        .col(string(UsageArrayValue::UsageId))
        .col(string(UsageArrayValue::Path))
        .col(text(UsageArrayValue::Value))
        .col(timestamp_with_time_zone_null(UsageArrayValue::UsageDate))
        // Also the index that finds a usage's rows when it changes or goes.
        .primary_key(&mut key(columns(up, UsageArrayValue::Tenant, &primary)))
        .to_owned()
}

/// Copies `table` into its new table (`<table>_new`), giving every row the implicit tenant
/// (`up`) or leaving the tenant out, then puts the new table in its place.
fn rebuild(steps: &mut Vec<String>, up: bool, table: &str, copied: &str) {
    let (into, from) = if up {
        (format!(r#""tenant", {copied}"#), format!("'', {copied}"))
    } else {
        (copied.to_string(), copied.to_string())
    };
    steps.push(format!(
        r#"INSERT INTO "{table}_new" ({into}) SELECT {from} FROM "{table}""#
    ));
    steps.push(format!(r#"DROP TABLE "{table}""#));
    steps.push(format!(r#"ALTER TABLE "{table}_new" RENAME TO "{table}""#));
}

/// Every step, in order, of `up` or of going back down. They run as one batch on one
/// connection: on SQLite another pooled connection may still hold the schema as it was before
/// a step (a table dropped, an index not yet made), and would see the next step against it.
fn steps(backend: DatabaseBackend, up: bool) -> Vec<String> {
    let mut steps = Vec::new();
    // Up: the columns, then the indexes on them; down: the other way round.
    let mut columns_step = Vec::new();
    for table in WITH_COLUMN {
        let mut alter = Table::alter();
        alter.table(table);
        if up {
            alter.add_column(string(Columns::Tenant).default(""));
        } else {
            alter.drop_column(Columns::Tenant);
        }
        columns_step.push(sql(backend, &alter));
    }
    if up {
        steps.append(&mut columns_step);
    }
    for (name, table, after) in TENANT_INDEXES {
        steps.push(sql(backend, &drop_index(name, table)));
        let columns = columns(up, Columns::Tenant, after);
        steps.push(sql(backend, &index(name, table, &columns)));
    }
    let by_tenant = [Columns::Tenant, Columns::ReceivedAt];
    if up {
        let index = index(RECEIVED_BY_TENANT, Tables::ReceivedEvent, &by_tenant);
        steps.push(sql(backend, &index));
    } else {
        let drop = drop_index(RECEIVED_BY_TENANT, Tables::ReceivedEvent);
        steps.push(sql(backend, &drop));
        steps.append(&mut columns_step);
    }
    // (On the way up, indexes are dropped before their table is rebuilt and made after.)
    for (name, _) in USAGE_INDEXES {
        steps.push(sql(backend, &drop_index(name, Usage::Table)));
    }
    steps.push(sql(backend, &usage_table(up)));
    rebuild(
        &mut steps,
        up,
        "usage",
        r#""id", "revision", "created_at", "usage_date", "usage_type", "status", "description", "usage_specification_id", "at_type", "document""#,
    );
    for (name, after) in USAGE_INDEXES {
        let columns = columns(up, Usage::Tenant, after);
        steps.push(sql(backend, &index(name, Usage::Table, &columns)));
    }
    let lookup = drop_index(ARRAY_VALUE_LOOKUP, UsageArrayValue::Table);
    steps.push(sql(backend, &lookup));
    steps.push(sql(backend, &array_value_table(up)));
    rebuild(
        &mut steps,
        up,
        "usage_array_value",
        r#""usage_id", "path", "value", "usage_date""#,
    );
    let columns = columns(up, UsageArrayValue::Tenant, &ARRAY_VALUE_COLUMNS);
    let lookup = index(ARRAY_VALUE_LOOKUP, UsageArrayValue::Table, &columns);
    steps.push(sql(backend, &lookup));
    steps
}

/// Runs `steps` as one batch (see `steps`); on SQLite a transaction of its own (PostgreSQL
/// runs every migration in one), so a failure leaves the schema as it was.
async fn run(manager: &SchemaManager<'_>, steps: Vec<String>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let mut batch = steps.join(";\n");
    if backend == DatabaseBackend::Sqlite {
        batch = format!("BEGIN;\n{batch};\nCOMMIT");
    }
    manager.get_connection().execute_unprepared(&batch).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, steps(manager.get_database_backend(), true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Only while every row is the implicit tenant's: rows of several tenants cannot be
        // merged into one (two usages may have the same id).
        let db = manager.get_connection();
        for table in [
            "usage",
            "usage_specification",
            "hub",
            "bulk_job",
            "received_event",
        ] {
            let other = format!(r#"SELECT 1 FROM "{table}" WHERE "tenant" <> '' LIMIT 1"#);
            let statement = Statement::from_string(manager.get_database_backend(), other);
            if db.query_one(statement).await?.is_some() {
                return Err(DbErr::Migration(format!(
                    "tenancy cannot be undone: {table} holds rows of tenants"
                )));
            }
        }
        run(manager, steps(manager.get_database_backend(), false)).await
    }
}
