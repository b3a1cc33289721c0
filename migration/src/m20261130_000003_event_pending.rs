//! Undispatched events in a table of their own (`event_pending`: one `seq` per event not yet
//! fanned out) instead of a `dispatched` flag on the outbox row.
//!
//! With the flag, dispatching an event rewrote its whole outbox row, payload and all, and
//! moved its entry in an index that grew with every event ever written: on SQLite every
//! event's pages went to the WAL twice, on PostgreSQL every event left a dead row version.
//! A pending row is a few bytes; it is inserted with the event and deleted when it is
//! dispatched, so the table stays as small as the backlog.

use sea_orm_migration::async_trait;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Dispatched,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // On SQLite `INTEGER PRIMARY KEY` is the rowid itself: no separate index to write.
        let seq_type = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => "INTEGER",
            _ => "BIGINT",
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS event_pending (seq {seq_type} NOT NULL PRIMARY KEY)"
        ))
        .await?;
        db.execute_unprepared(
            "INSERT INTO event_pending (seq) SELECT seq FROM event_outbox WHERE NOT dispatched",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_event_outbox_pending")
                    .table(EventOutbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(EventOutbox::Table)
                    .drop_column(EventOutbox::Dispatched)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let column = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => "boolean NOT NULL DEFAULT 1",
            _ => "boolean NOT NULL DEFAULT true",
        };
        db.execute_unprepared(&format!(
            "ALTER TABLE event_outbox ADD COLUMN dispatched {column}"
        ))
        .await?;
        db.execute_unprepared(
            "UPDATE event_outbox SET dispatched = (seq NOT IN (SELECT seq FROM event_pending))",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_event_outbox_pending ON event_outbox (dispatched, seq)",
        )
        .await?;
        db.execute_unprepared("DROP TABLE event_pending").await?;
        Ok(())
    }
}
