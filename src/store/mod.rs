//! Persistence with sea-orm: one module per table, no HTTP types. Every write that changes a
//! resource writes its events to the outbox in the same transaction.

pub mod delivery;
mod hub;
mod outbox;
mod received_event;
pub mod resource;
mod tables;

pub use resource::StoredResource;
pub use tables::Table;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Notified after every committed change, so the local delivery worker wakes at once.
    changes: Arc<Notify>,
}

impl Store {
    /// Connects (creating the SQLite file if the URL says `mode=rwc`) and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            // WAL lets reads run beside the writer; FULL sync makes a 201 survive power loss;
            // writers queue on the lock instead of failing.
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    // REGEXP for the `.regex` filter operator.
                    .with_regexp()
            });
        let db = Database::connect(options).await?;
        <migration::Migrator as migration::MigratorTrait>::up(&db, None).await?;
        Ok(Store {
            db,
            changes: Arc::new(Notify::new()),
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Completes (once) after the next committed change of a resource.
    pub fn changes(&self) -> Arc<Notify> {
        self.changes.clone()
    }

    pub(crate) fn changed(&self) {
        self.changes.notify_one();
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }
}
