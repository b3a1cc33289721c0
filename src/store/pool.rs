//! The store's pool of connections, reachable only through work that waits for durability.
//!
//! On SQLite the writer's commits are visible to other connections before they are synced
//! (`wal_sync`). Whatever runs on the pool may have seen such a commit, so nothing it found,
//! not even "not found", leaves [`Pool::run`], [`Pool::read`] or [`Pool::search`] before every
//! batch the writer had begun by then is synced. The connection itself is handed only to the
//! work inside them; there is no other way to it.

use super::lost_session::SessionError;
use super::wal_sync::Durability;
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::sync::Arc;

pub struct Pool {
    db: DatabaseConnection,
    /// Where list queries run: on SQLite a pool whose statements stop at the time limit (see
    /// `connection`); elsewhere `db`.
    search: DatabaseConnection,
    /// SQLite with a database file: how far the writer's batches are synced. None where a
    /// commit is durable before it is visible (PostgreSQL, SQLite in memory).
    durability: Option<Arc<Durability>>,
}

impl Pool {
    pub(super) fn new(
        db: DatabaseConnection,
        search: DatabaseConnection,
        durability: Option<Arc<Durability>>,
    ) -> Pool {
        Pool {
            db,
            search,
            durability,
        }
    }

    /// Runs `work` on the pool and hands back its outcome once everything `work` can have
    /// read is durable. Waiting after the work, not before, covers commits made while it ran.
    pub async fn run<'a, T, E, F, Fut>(&'a self, work: F) -> Result<T, E>
    where
        F: FnOnce(&'a DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.settled(work(&self.db).await).await
    }

    /// As [`Pool::run`], for work that only reads: when its connection turns out to have lost
    /// its session, it runs once more on another (see `lost_session`).
    pub async fn read<'a, T, E, F, Fut>(&'a self, work: F) -> Result<T, E>
    where
        F: Fn(&'a DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: SessionError,
    {
        self.settled(again_if_lost(&self.db, work).await).await
    }

    /// As [`Pool::read`], for a query whose cost grows with the data (a list, a count): it
    /// stops at the statement time limit on every backend.
    pub async fn search<'a, T, E, F, Fut>(&'a self, work: F) -> Result<T, E>
    where
        F: Fn(&'a DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: SessionError,
    {
        self.settled(again_if_lost(&self.search, work).await).await
    }

    async fn settled<T>(&self, outcome: T) -> T {
        if let Some(durability) = &self.durability {
            durability.settled().await;
        }
        outcome
    }

    /// Connections of the pool: open, and idle among them.
    pub(super) fn connections(&self) -> (u32, usize) {
        super::probe::connections(&self.db)
    }

    /// Closes the pool's connections.
    pub async fn close(&self) -> Result<(), sea_orm::DbErr> {
        self.search.clone().close().await?;
        self.db.clone().close().await
    }
}

/// Runs the reading `work` on `db`, and once more if its connection had lost its session.
async fn again_if_lost<'a, T, E, F, Fut>(db: &'a DatabaseConnection, work: F) -> Result<T, E>
where
    F: Fn(&'a DatabaseConnection) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: SessionError,
{
    match work(db).await {
        Err(e) if e.session_lost() => work(db).await,
        outcome => outcome,
    }
}
