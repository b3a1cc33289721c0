//! The outbox keeps each event's payload as the text it is sent as, not as `jsonb`.
//!
//! Nothing queries inside a payload: it is written once, parsed by the dispatcher only to
//! match subscription queries, and POSTed to listeners as it is. As `jsonb`, PostgreSQL
//! parsed every payload (the whole resource again) on insert, a tenth of its CPU under POST
//! load, turned it back into text on every delivery, and sent listeners its keys re-sorted,
//! where SQLite sent them in the order they were written. SQLite stores the column as text
//! already: nothing to change there.
//!
//! Portable steps (no `ALTER COLUMN ... TYPE`, which distributed PostgreSQL-compatible engines
//! restrict): a text column beside the old one, filled, then put in its place.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `payload` becomes a column of `to` (`text` or `jsonb`), its values cast.
async fn retype_payload(manager: &SchemaManager<'_>, to: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for sql in [
        format!("ALTER TABLE event_outbox ADD COLUMN payload_retyped {to}"),
        format!("UPDATE event_outbox SET payload_retyped = CAST(payload AS {to})"),
        "ALTER TABLE event_outbox DROP COLUMN payload".to_string(),
        "ALTER TABLE event_outbox RENAME COLUMN payload_retyped TO payload".to_string(),
        "ALTER TABLE event_outbox ALTER COLUMN payload SET NOT NULL".to_string(),
    ] {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype_payload(manager, "text").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype_payload(manager, "jsonb").await
    }
}
