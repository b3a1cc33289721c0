//! How the store connects: pool settings, the pragmas of every SQLite connection, and the
//! time limit of a statement on each backend.
//!
//! PostgreSQL cancels a statement past `statement_timeout` itself. SQLite has no such
//! setting, so list queries run on a pool of their own whose connections carry a progress
//! handler: SQLite calls it every few thousand steps of a statement, and past the deadline set
//! when the connection was taken from the pool it interrupts the statement (SQLITE_INTERRUPT,
//! answered 503 like PostgreSQL's cancellation). Reads by id and writes are bounded by their
//! inputs and keep the plain pool, which skips the round trip to the connection's thread that
//! setting a deadline costs.

use super::{checkpoint, lost_session};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::{
    ConnectOptions, DatabaseConnection, DbErr, SqlxPostgresConnector, SqlxSqliteConnector,
};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A connection's lifetime that never runs out.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Steps of a SQLite statement between two looks at its deadline: frequent enough to stop
/// within a millisecond or so, rare enough to cost nothing measurable.
const STEPS_BETWEEN_LOOKS: i32 = 1000;

/// What a set of connections is for.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Role {
    /// The pool for reads by id and the event pipeline's small writes. Its reads come from a
    /// memory map of the database file's first `mmap_bytes` (SQLite's `mmap_size`): a page
    /// is read where it lies in the OS page cache, with no system call and no copy into the
    /// connection's own cache. The pages a read touched count toward the process's resident
    /// memory as shared file pages (the page cache `pread` reads from as well), at most
    /// `mmap_bytes` of them. An I/O error under the map ends the process (SIGBUS), as any
    /// disk failure under the writer does.
    Pool { mmap_bytes: u64 },
    /// The pool of list queries, without a map: a list or an export touches pages in the
    /// thousands, and through a map they would all stay counted as the process's memory.
    Search,
    /// The SQLite writer's one connection: 32 MiB of page cache (SQLite's default is 2 MiB),
    /// commits that leave the WAL unsynced (`wal_sync` syncs it before answering), and never
    /// replaced, so SQLite keeps the WAL file `wal_sync` holds open (it removes the file when
    /// its last connection closes).
    SqliteWriter,
}

/// Pool settings of a SQLite database, and the pragmas every connection gets (PostgreSQL's
/// pools are made by [`postgres`]).
pub(super) fn options(url: &str, max_connections: u32, role: Role) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    if role == Role::SqliteWriter {
        options.max_lifetime(FOREVER).idle_timeout(FOREVER);
    }
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false)
        // No ping before each use: a connection is a thread of this process and the ping one
        // more hop to it per query.
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(move |o| sqlite(o, role));
    options
}

/// The PostgreSQL pool: sessions with `statement_timeout`, and connections pinged before use
/// only when they may have lost their session (see `lost_session`).
pub(super) async fn postgres(
    url: &str,
    max_connections: u32,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    // 0: no limit, as PostgreSQL reads it.
    let timeout_ms = statement_timeout.as_millis().to_string();
    let connect = PgConnectOptions::from_str(url)
        .map_err(connection_failed)?
        .options([("statement_timeout", timeout_ms.as_str())])
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move { Ok(lost_session::check(connection, meta).await) })
        })
        .connect_with(connect)
        .await
        .map_err(connection_failed)?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// The SQLite pool for list queries: the pool's settings, and a statement that runs past
/// `statement_timeout` from the moment its connection was taken is interrupted. A zero
/// timeout sets no deadline.
pub(super) async fn sqlite_with_deadlines(
    url: &str,
    max_connections: u32,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(connection_failed)?
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .test_before_acquire(false)
        .after_connect(move |connection, _| {
            Box::pin(async move { set_deadline(connection, statement_timeout).await })
        })
        .before_acquire(move |connection, _| {
            Box::pin(async move {
                set_deadline(connection, statement_timeout).await?;
                Ok(true)
            })
        })
        .connect_with(sqlite(connect, Role::Search))
        .await
        .map_err(connection_failed)?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// A failure to connect, as sea-orm reports one.
fn connection_failed(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))
}

/// Interrupts whatever `connection` runs once `limit` has passed from now.
async fn set_deadline(
    connection: &mut sea_orm::sqlx::SqliteConnection,
    limit: Duration,
) -> Result<(), sea_orm::sqlx::Error> {
    if limit.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + limit;
    let mut handle = connection.lock_handle().await?;
    // The handler answers whether the statement may go on.
    handle.set_progress_handler(STEPS_BETWEEN_LOOKS, move || Instant::now() < deadline);
    Ok(())
}

/// The pragmas of every SQLite connection of `role`.
fn sqlite(o: SqliteConnectOptions, role: Role) -> SqliteConnectOptions {
    // WAL lets reads run beside the writer; the pool's commits (FULL) are synced before they
    // are visible, the writer's before they are answered (`wal_sync`); writers queue on the
    // lock instead of failing.
    let o = match role {
        Role::SqliteWriter => o
            .pragma("cache_size", format!("-{}", 32 * 1024))
            .synchronous(SqliteSynchronous::Normal),
        Role::Pool { mmap_bytes } => o
            .synchronous(SqliteSynchronous::Full)
            .pragma("mmap_size", mmap_bytes.to_string()),
        Role::Search => o.synchronous(SqliteSynchronous::Full),
    };
    o.journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        // Statement journals (multi-row INSERTs, savepoints) in memory, not in a temp file
        // created and deleted per statement.
        .pragma("temp_store", "memory")
        // Checkpoints run beside the writer (see `checkpoint`). When the WAL starts over,
        // SQLite cuts the file back to this size: the bound the writer keeps it to, so a
        // 512 MiB file is not truncated in the writer's way each time.
        .pragma("wal_autocheckpoint", "0")
        .pragma("journal_size_limit", checkpoint::WAL_BOUND.to_string())
        // REGEXP for the `.regex` filter operator.
        .with_regexp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Database, Statement};

    async fn mmap_size(db: &DatabaseConnection) -> i64 {
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA mmap_size",
            ))
            .await
            .expect("pragma")
            .expect("a row");
        row.try_get_by_index(0).expect("a number")
    }

    #[tokio::test]
    async fn reads_by_id_are_mapped_and_lists_are_not() {
        let dir = std::env::temp_dir().join(format!("tmf635-mmap-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let role = Role::Pool {
            mmap_bytes: 1 << 20,
        };
        let reads = Database::connect(options(&url, 1, role))
            .await
            .expect("connect");
        assert_eq!(mmap_size(&reads).await, 1 << 20);
        let lists = sqlite_with_deadlines(&url, 1, Duration::from_secs(1))
            .await
            .expect("connect");
        assert_eq!(mmap_size(&lists).await, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
