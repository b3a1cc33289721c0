//! Statements on one resource by id, on connections of their own.
//!
//! Reads by id are the most frequent queries, and an update is a read by id and (on
//! PostgreSQL) one statement; each is one statement, but through sqlx's pool it cost two
//! exchanges: sqlx pings a connection each time it goes back to the pool (to PostgreSQL a
//! round trip, to SQLite a hop to the connection's thread and back). Here a few connections,
//! opened with the pool's own options, are kept in a list of our own, which takes them back
//! without the ping. A statement that does not end well (an error, or its request dropped
//! mid-query) closes its connection instead of returning it, so a connection in an unknown
//! state is never used again.

use sea_orm::sqlx::{self, ConnectOptions, Connection, Database, Pool, Postgres, Sqlite};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, QueryResult, Statement};
use sea_query_binder::SqlxValues;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Statements on these connections at once at most (so at most this many are kept, fewer when
/// the pool is smaller); more wait for one.
const CONNECTIONS: u32 = 8;

/// How long opening a connection may take, as for the pool's (see `store::options`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The by-id connections of the store's database.
pub(super) enum ByIdConnections {
    Sqlite(Connections<Sqlite>),
    Postgres(Connections<Postgres>),
}

impl ByIdConnections {
    /// Connections opened as `db`'s pool opens them.
    pub fn new(db: &DatabaseConnection) -> ByIdConnections {
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                ByIdConnections::Postgres(Connections::new(db.get_postgres_connection_pool()))
            }
            _ => ByIdConnections::Sqlite(Connections::new(db.get_sqlite_connection_pool())),
        }
    }

    /// The first row of `statement`, if any. A statement that finds its connection gone (the
    /// database restarted, or ended the session) is tried once more on a new one, the other
    /// kept connections being closed as likely gone too. A write tried again must be one that
    /// changes nothing when it was applied the first time (an update of a given revision).
    pub async fn query_one(
        &self,
        statement: &Statement,
    ) -> Result<Option<QueryResult>, sqlx::Error> {
        match self.query_one_once(statement).await {
            Err(error) if connection_lost(&error) => {
                self.forget_kept();
                self.query_one_once(statement).await
            }
            result => result,
        }
    }

    async fn query_one_once(
        &self,
        statement: &Statement,
    ) -> Result<Option<QueryResult>, sqlx::Error> {
        let values = SqlxValues(
            statement
                .values
                .clone()
                .unwrap_or(sea_orm::Values(Vec::new())),
        );
        Ok(match self {
            ByIdConnections::Sqlite(connections) => connections
                .query_once(&statement.sql, values)
                .await?
                .map(QueryResult::from),
            ByIdConnections::Postgres(connections) => connections
                .query_once(&statement.sql, values)
                .await?
                .map(QueryResult::from),
        })
    }

    fn forget_kept(&self) {
        match self {
            ByIdConnections::Sqlite(connections) => connections.forget_kept(),
            ByIdConnections::Postgres(connections) => connections.forget_kept(),
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

pub(super) struct Connections<DB: Database> {
    options: Arc<<DB::Connection as Connection>::Options>,
    idle: Mutex<Vec<DB::Connection>>,
    permits: Semaphore,
}

/// A connection lent to one statement, with its permit. Dropped without `give_back` (an error, a
/// cancelled read), the connection closes.
pub(super) struct Lent<'a, DB: Database> {
    connection: DB::Connection,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl<DB: Database> Connections<DB> {
    fn new(pool: &Pool<DB>) -> Connections<DB> {
        let kept = CONNECTIONS.clamp(1, pool.options().get_max_connections().max(1)) as usize;
        Connections {
            options: pool.connect_options(),
            idle: Mutex::new(Vec::with_capacity(kept)),
            permits: Semaphore::new(kept),
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

    async fn query_once(
        &self,
        sql: &str,
        values: SqlxValues,
    ) -> Result<Option<DB::Row>, sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        SqlxValues: for<'q> sqlx::IntoArguments<'q, DB>,
    {
        let mut lent = self.take().await?;
        let row = sqlx::query_with(sql, values)
            .fetch_optional(&mut lent.connection)
            .await?;
        self.give_back(lent);
        Ok(row)
    }

    /// Closes the kept connections (lent ones close when their statement ends in an error).
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
