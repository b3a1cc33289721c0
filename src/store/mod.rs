//! Persistence with sea-orm: one module per table, no HTTP types. Every write that changes a
//! resource writes its events to the outbox in the same transaction.

mod api_key;
pub mod array_index;
mod checkpoint;
mod connection;
pub mod delivery;
pub mod export;
mod fan_out;
mod hub;
pub mod import;
mod insert;
pub mod jobs;
mod list;
mod lost_session;
mod outbox;
mod pool;
mod probe;
mod received_event;
pub mod resource;
pub mod retention;
mod tables;
mod tenant;
mod wal_sync;
mod writer;

pub use lost_session::is_lost as session_lost;
pub use pool::Pool;
pub use probe::{QueueCounts, WriterMetrics};
pub use resource::StoredResource;
pub use tables::Table;
pub use tenant::{Tenant, TenantStore};
pub use writer::{BoxFuture, Committed};

use crate::error::Error;
use connection::{options, Role};
use sea_orm::{
    ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use writer::GroupCommit;

/// Ids per `IN (...)` when a store module looks rows up by a list of ids: well within both
/// databases' bound on the parameters of a statement.
const IDS_PER_IN: usize = 500;

#[derive(Clone)]
pub struct Store {
    /// Reads, and the writes that do not go through the writer.
    pool: Arc<Pool>,
    /// Notified after every committed change, so the local delivery worker wakes at once.
    changes: Arc<Notify>,
    /// The writer tasks with group commit: every write on SQLite, creates on PostgreSQL.
    group_commit: GroupCommit,
    backend: DatabaseBackend,
    /// The writer's histograms, registered by the server's metrics.
    writer_metrics: WriterMetrics,
}

impl Store {
    /// Connects (creating the SQLite file if the URL says `mode=rwc`) and applies migrations.
    /// A statement running past `statement_timeout` is cancelled on PostgreSQL, and on SQLite
    /// when it is a list query (see `connection`). SQLite's reads by id come from a memory
    /// map of the file's first `sqlite_mmap_bytes` (0: none).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout: Duration,
        sqlite_mmap_bytes: u64,
    ) -> Result<Store, DbErr> {
        let db = if is_postgres(url) {
            connection::postgres(url, max_connections, statement_timeout).await?
        } else {
            let role = Role::Pool {
                mmap_bytes: sqlite_mmap_bytes,
            };
            Database::connect(options(url, max_connections, role)).await?
        };
        if db.get_database_backend() == DatabaseBackend::Postgres {
            // Migrations run with no statement time limit (building an index on a large table
            // takes what it takes), on a connection of their own.
            let migrations = connection::postgres(url, 1, Duration::ZERO).await?;
            <migration::Migrator as migration::MigratorTrait>::up(&migrations, None).await?;
            migrations.close().await?;
        } else {
            <migration::Migrator as migration::MigratorTrait>::up(&db, None).await?;
        }
        let backend = db.get_database_backend();
        let changes = Arc::new(Notify::new());
        let commits = checkpoint::counter();
        let (writer_db, wal) = match backend {
            DatabaseBackend::Sqlite => {
                checkpoint::start(db.clone(), Arc::downgrade(&commits));
                // The writer has a connection of its own: SQLite drops a connection's page
                // cache when another one has written, so a writer borrowing any pooled
                // connection would start every batch on a cold cache. Its 32 MiB of pages keep
                // the index pages inserts touch cached; readers keep SQLite's default 2 MiB.
                let writer_db = Database::connect(options(url, 1, Role::SqliteWriter)).await?;
                let wal = wal_file(&writer_db).await?;
                if wal.is_some() {
                    check_wal_mode(&writer_db).await?;
                }
                (writer_db, wal)
            }
            _ => (db.clone(), None),
        };
        // A database in memory exists only on the pool's connections, so its lists run there.
        let search = if backend == DatabaseBackend::Sqlite && wal.is_some() {
            connection::sqlite_with_deadlines(url, max_connections, statement_timeout).await?
        } else {
            db.clone()
        };
        let writer_metrics = WriterMetrics::new();
        let (group_commit, durability) = GroupCommit::start(
            writer_db,
            wal,
            changes.clone(),
            commits,
            writer_metrics.clone(),
        )
        .map_err(|e| DbErr::Custom(format!("cannot start the writer: {e}")))?;
        Ok(Store {
            backend,
            pool: Arc::new(Pool::new(db, search, durability)),
            changes,
            group_commit,
            writer_metrics,
        })
    }

    /// The pool: whatever runs on it hands out only what is durable.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Completes (once) after the next committed change of a resource.
    pub fn changes(&self) -> Arc<Notify> {
        self.changes.clone()
    }

    pub(crate) fn changed(&self) {
        self.changes.notify_one();
    }

    /// Runs `work` in a write transaction and answers once it is committed: on SQLite in the
    /// writer's next batch (see `writer`), on PostgreSQL in a transaction of its own.
    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<R, Error>>
            + Send
            + 'static,
    {
        match self.backend {
            DatabaseBackend::Sqlite => self.group_commit.write(work).await,
            _ => {
                let value = self.pool.run(|db| writer::in_transaction(db, work)).await?;
                self.changed();
                Ok(value)
            }
        }
    }

    /// SQLite only: runs `work` on the writer's connection in a transaction of its own, with no
    /// savepoint around it; answers at its commit, durable later (see `GroupCommit::write_alone`).
    pub(crate) async fn write_alone<R, F>(&self, work: F) -> Result<Committed<R>, Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseConnection) -> BoxFuture<'c, Result<R, Error>>
            + Send
            + 'static,
    {
        if self.backend != DatabaseBackend::Sqlite {
            return Err(Error::Internal(
                "a write alone is for the SQLite writer's connection".into(),
            ));
        }
        self.group_commit.write_alone(work).await
    }

    /// Inserts a new resource with its index rows and events, in a writer's next batch.
    pub(crate) async fn insert(
        &self,
        resource: writer::NewResource,
    ) -> Result<writer::NewResource, Error> {
        self.group_commit.insert(resource).await
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }
}

/// Whether `url` names a PostgreSQL database (sea-orm's own test panics on a malformed URL).
fn is_postgres(url: &str) -> bool {
    matches!(url.split_once("://"), Some(("postgres" | "postgresql", _)))
}

/// Refuses to start unless the SQLite database file really is in WAL mode: SQLite keeps its
/// old journal mode, saying nothing, where it cannot use a WAL (some network filesystems), and
/// readers beside the writer, checkpoints and the durability of a commit all assume one.
async fn check_wal_mode(db: &DatabaseConnection) -> Result<(), DbErr> {
    let statement = sea_orm::Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA journal_mode");
    let mode: String = match db.query_one(statement).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => String::new(),
    };
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "the SQLite database is in journal mode {mode:?}, not WAL: its filesystem may not \
             support a WAL (a local disk does)"
        )))
    }
}

/// The WAL file of the SQLite database `db` is open on; None for a database in memory.
async fn wal_file(db: &DatabaseConnection) -> Result<Option<std::path::PathBuf>, DbErr> {
    let statement = sea_orm::Statement::from_string(
        DatabaseBackend::Sqlite,
        "SELECT file FROM pragma_database_list WHERE name = 'main'",
    );
    let file: Option<String> = match db.query_one(statement).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    Ok(file
        .filter(|f| !f.is_empty())
        .map(|f| std::path::PathBuf::from(format!("{f}-wal"))))
}
