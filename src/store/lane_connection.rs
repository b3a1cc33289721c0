//! A PostgreSQL writer lane's own connection, held for as long as the lane runs.
//!
//! A pooled connection costs a round trip more per use: sqlx pings each connection as it
//! returns to the pool. A lane runs one statement per batch (`insert`), so that ping was half
//! of its round trips. The connection is opened on first use and again after it fails.

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, ConnectOptions, Executor};
use sea_orm::Statement;
use sea_query_binder::SqlxValues;
use std::str::FromStr;

pub struct LaneConnection {
    options: PgConnectOptions,
    connection: Option<PgConnection>,
}

impl LaneConnection {
    pub fn new(url: &str) -> Result<LaneConnection, sqlx::Error> {
        Ok(LaneConnection {
            options: PgConnectOptions::from_str(url)?.disable_statement_logging(),
            connection: None,
        })
    }

    /// Runs one statement on its own (PostgreSQL makes it atomic). A failure drops the
    /// connection, so whatever state it was left in, the next statement gets a fresh one.
    pub async fn execute(&mut self, statement: Statement) -> Result<(), sqlx::Error> {
        let connection = match self.connection.as_mut() {
            Some(connection) => connection,
            None => self.connection.insert(self.options.connect().await?),
        };
        let values = statement.values.unwrap_or(sea_orm::Values(Vec::new()));
        let query = sqlx::query_with(&statement.sql, SqlxValues(values));
        let result = connection.execute(query).await;
        if result.is_err() {
            self.connection = None;
        }
        result.map(|_| ())
    }
}
