//! Reads by id on connections of their own.
//!
//! A read by id is the most frequent query and one statement, but through sqlx's pool it cost
//! two exchanges: sqlx pings a connection each time it goes back to the pool (to PostgreSQL a
//! round trip, to SQLite a hop to the connection's thread and back). Here a few connections,
//! opened with the pool's own options, are kept in a list of our own, which takes them back
//! without the ping. A read that does not end well (an error, or its request dropped
//! mid-query) closes its connection instead of returning it, so a connection in an unknown
//! state is never used again.

use sea_orm::sqlx::{self, ConnectOptions, Connection, Database, Pool, Postgres, Sqlite};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Reads on these connections at once at most (so at most this many are kept, fewer when the
/// pool is smaller); more wait for one.
const READERS: u32 = 8;

/// How long opening a connection may take, as for the pool's (see `store::options`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A row as a read by id answers it: id, revision, rendered document.
pub(super) type RenderedRow = (String, i64, String);

/// The readers of the store's database.
pub(super) enum ByIdReaders {
    Sqlite(Readers<Sqlite>),
    Postgres(Readers<Postgres>),
}

impl ByIdReaders {
    /// Readers connecting as `db`'s pool does.
    pub fn new(db: &DatabaseConnection) -> ByIdReaders {
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                ByIdReaders::Postgres(Readers::new(db.get_postgres_connection_pool()))
            }
            _ => ByIdReaders::Sqlite(Readers::new(db.get_sqlite_connection_pool())),
        }
    }

    /// The one row `sql` selects with `values` bound in order, if any. A read that finds its
    /// connection gone (the database restarted, or ended the session) is tried once more on a
    /// new one, the other kept connections being closed as likely gone too.
    pub async fn fetch(
        &self,
        sql: &str,
        values: &[String],
    ) -> Result<Option<RenderedRow>, sqlx::Error> {
        match self.fetch_once(sql, values).await {
            Err(error) if connection_lost(&error) => {
                self.forget_kept();
                self.fetch_once(sql, values).await
            }
            result => result,
        }
    }

    async fn fetch_once(
        &self,
        sql: &str,
        values: &[String],
    ) -> Result<Option<RenderedRow>, sqlx::Error> {
        match self {
            ByIdReaders::Sqlite(readers) => readers.fetch_once(sql, values).await,
            ByIdReaders::Postgres(readers) => readers.fetch_once(sql, values).await,
        }
    }

    fn forget_kept(&self) {
        match self {
            ByIdReaders::Sqlite(readers) => readers.forget_kept(),
            ByIdReaders::Postgres(readers) => readers.forget_kept(),
        }
    }
}

/// Whether `error` says the connection can no longer be used, rather than that the query
/// failed: transport and protocol failures, and PostgreSQL's connection exceptions (SQLSTATE
/// class 08) and operator interventions (class 57, e.g. `pg_terminate_backend`).
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        _ => false,
    }
}

pub(super) struct Readers<DB: Database> {
    options: Arc<<DB::Connection as Connection>::Options>,
    idle: Mutex<Vec<DB::Connection>>,
    permits: Semaphore,
}

/// A connection lent to one read, with its permit. Dropped without `give_back` (an error, a
/// cancelled read), the connection closes.
pub(super) struct Lent<'a, DB: Database> {
    connection: DB::Connection,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl<DB: Database> Readers<DB> {
    fn new(pool: &Pool<DB>) -> Readers<DB> {
        let readers = READERS.clamp(1, pool.options().get_max_connections().max(1)) as usize;
        Readers {
            options: pool.connect_options(),
            idle: Mutex::new(Vec::with_capacity(readers)),
            permits: Semaphore::new(readers),
        }
    }

    async fn take(&self) -> Result<Lent<'_, DB>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match kept {
            Some(connection) => connection,
            None => tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok(Lent {
            connection,
            _permit: permit,
        })
    }

    async fn fetch_once(
        &self,
        sql: &str,
        values: &[String],
    ) -> Result<Option<RenderedRow>, sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
        for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        RenderedRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        let mut lent = self.take().await?;
        let mut query = sqlx::query_as::<DB, RenderedRow>(sql);
        for value in values {
            query = query.bind(value.as_str());
        }
        let row = query.fetch_optional(&mut lent.connection).await?;
        self.give_back(lent);
        Ok(row)
    }

    /// Closes the kept connections (lent ones close when their read ends in an error).
    fn forget_kept(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn give_back(&self, lent: Lent<'_, DB>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(lent.connection);
        }
    }
}
