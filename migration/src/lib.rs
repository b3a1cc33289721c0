//! Schema migrations, run by the server at start (`Migrator::up`). They use only portable SQL so
//! one history serves SQLite and PostgreSQL (and PostgreSQL-compatible distributed engines).

#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_usage_array_value;
mod m20261130_000003_event_pending;
mod m20261201_000004_event_payload_text;
mod m20261203_000005_retention;
mod m20261206_000006_bulk_job;
mod m20261206_000007_auth;
mod m20261207_000008_tenant;
mod m20261208_000009_import_order;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_usage_array_value::Migration),
            Box::new(m20261130_000003_event_pending::Migration),
            Box::new(m20261201_000004_event_payload_text::Migration),
            Box::new(m20261203_000005_retention::Migration),
            Box::new(m20261206_000006_bulk_job::Migration),
            Box::new(m20261206_000007_auth::Migration),
            Box::new(m20261207_000008_tenant::Migration),
            Box::new(m20261208_000009_import_order::Migration),
        ]
    }
}
