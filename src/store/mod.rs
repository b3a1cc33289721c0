//! Persistence with sea-orm: one module per table, no HTTP types. Every write that changes a
//! resource writes its events to the outbox in the same transaction.

mod api_key;
pub mod array_index;
mod checkpoint;
pub mod delivery;
mod hub;
mod insert;
mod outbox;
mod pool;
mod received_event;
pub mod resource;
pub mod retention;
mod tables;
mod wal_sync;
mod writer;

pub use pool::Pool;
pub use resource::StoredResource;
pub use tables::Table;
pub use writer::BoxFuture;

use crate::error::Error;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use writer::GroupCommit;

#[derive(Clone)]
pub struct Store {
    /// Reads, and the writes that do not go through the writer.
    pool: Arc<Pool>,
    /// Notified after every committed change, so the local delivery worker wakes at once.
    changes: Arc<Notify>,
    /// The writer tasks with group commit: every write on SQLite, creates on PostgreSQL.
    group_commit: GroupCommit,
    backend: DatabaseBackend,
}

impl Store {
    /// Connects (creating the SQLite file if the URL says `mode=rwc`) and applies migrations.
    /// On PostgreSQL a statement running past `statement_timeout` is cancelled.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<Store, DbErr> {
        let db =
            Database::connect(options(url, max_connections, Role::Pool, statement_timeout)).await?;
        if db.get_database_backend() == DatabaseBackend::Postgres {
            // Migrations run with no statement time limit (building an index on a large table
            // takes what it takes), on a connection of their own.
            let migrations = Database::connect(options(url, 1, Role::Pool, Duration::ZERO)).await?;
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
                let writer_db =
                    Database::connect(options(url, 1, Role::SqliteWriter, statement_timeout))
                        .await?;
                let wal = wal_file(&writer_db).await?;
                if wal.is_some() {
                    check_wal_mode(&writer_db).await?;
                }
                (writer_db, wal)
            }
            _ => (db.clone(), None),
        };
        let (group_commit, durability) =
            GroupCommit::start(writer_db, wal, changes.clone(), commits)
                .map_err(|e| DbErr::Custom(format!("cannot start the writer: {e}")))?;
        Ok(Store {
            backend,
            pool: Arc::new(Pool::new(db, durability)),
            changes,
            group_commit,
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

/// A connection's lifetime that never runs out.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What a set of connections is for.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Pool,
    /// The SQLite writer's one connection: 32 MiB of page cache (SQLite's default is 2 MiB),
    /// commits that leave the WAL unsynced (`wal_sync` syncs it before answering), and never
    /// replaced, so SQLite keeps the WAL file `wal_sync` holds open (it removes the file when
    /// its last connection closes).
    SqliteWriter,
}

/// Pool settings; on SQLite, the pragmas every connection gets; on PostgreSQL, the session's
/// `statement_timeout`.
fn options(
    url: &str,
    max_connections: u32,
    role: Role,
    statement_timeout: Duration,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    if role == Role::SqliteWriter {
        options.max_lifetime(FOREVER).idle_timeout(FOREVER);
    }
    // 0: no limit, as PostgreSQL reads it.
    let timeout_ms = statement_timeout.as_millis().to_string();
    options
        .map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", timeout_ms.as_str())]))
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // A ping before each use on PostgreSQL, whose sessions can end under an idle
        // connection (a server restart, `pg_terminate_backend`): the pool then opens a new
        // one instead of failing a query. Not on SQLite, where a connection is a thread of
        // this process and the ping one more hop to it per query.
        .test_before_acquire(!url.starts_with("sqlite:"))
        // WAL lets reads run beside the writer; the pool's commits (FULL) are synced before
        // they are visible, the writer's before they are answered (`wal_sync`); writers
        // queue on the lock instead of failing.
        .map_sqlx_sqlite_opts(move |o| {
            let o = match role {
                Role::SqliteWriter => o
                    .pragma("cache_size", format!("-{}", 32 * 1024))
                    .synchronous(SqliteSynchronous::Normal),
                Role::Pool => o.synchronous(SqliteSynchronous::Full),
            };
            o.journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // Statement journals (multi-row INSERTs, savepoints) in memory, not in a
                // temp file created and deleted per statement.
                .pragma("temp_store", "memory")
                // Checkpoints run beside the writer (see `checkpoint`). When the WAL starts
                // over, SQLite cuts the file back to this size: the bound the writer keeps it
                // to, so a 512 MiB file is not truncated in the writer's way each time.
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", checkpoint::WAL_BOUND.to_string())
                // REGEXP for the `.regex` filter operator.
                .with_regexp()
        });
    options
}
