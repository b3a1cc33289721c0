//! What health checks and metrics ask of the store: a trivial query, pending migrations, a
//! write through the write path, the queue's counts, the pool's use, and the writer's
//! histograms.

use super::Store;
use crate::error::Error;
use entity::{delivery, event_pending};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter,
    Statement,
};

/// The writer's histograms, observed by the writer tasks and the WAL sync stage.
#[derive(Clone)]
pub struct WriterMetrics {
    pub batch_size: Histogram,
    pub commit: Histogram,
    pub sync: Histogram,
}

impl WriterMetrics {
    pub fn new() -> WriterMetrics {
        let seconds = || Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        WriterMetrics {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit: seconds(),
            sync: seconds(),
        }
    }
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics::new()
    }
}

/// Rows of the event queue.
pub struct QueueCounts {
    /// Committed events not yet fanned out to subscriptions.
    pub outbox_waiting: u64,
    pub pending: u64,
    pub dead: u64,
}

impl Store {
    /// Answers once the database has run a trivial query.
    pub async fn ping(&self) -> Result<(), Error> {
        let backend = self.backend;
        self.pool()
            .run(|db| async move {
                db.execute(Statement::from_string(backend, "SELECT 1"))
                    .await
                    .map(|_| ())
            })
            .await
            .map_err(Error::from)
    }

    /// How many migrations this binary knows that the database has not applied.
    pub async fn pending_migrations(&self) -> Result<usize, Error> {
        self.pool()
            .run(|db| async move {
                <migration::Migrator as migration::MigratorTrait>::get_pending_migrations(db).await
            })
            .await
            .map(|pending| pending.len())
            .map_err(Error::from)
    }

    /// Commits an empty transaction through the write path (on SQLite the writer and the sync
    /// of its WAL): answers once a write would have been acknowledged.
    pub async fn write_nothing(&self) -> Result<(), Error> {
        self.write(|_| Box::pin(async { Ok(()) })).await
    }

    pub async fn queue_counts(&self) -> Result<QueueCounts, Error> {
        self.pool()
            .search(|db| async move {
                let by_status = |status: &'static str| {
                    delivery::Entity::find()
                        .filter(delivery::Column::Status.eq(status))
                        .count(db)
                };
                Ok::<_, sea_orm::DbErr>(QueueCounts {
                    outbox_waiting: event_pending::Entity::find().count(db).await?,
                    pending: by_status("pending").await?,
                    dead: by_status("dead").await?,
                })
            })
            .await
            .map_err(Error::from)
    }

    /// Connections of the pool: open, and idle among them.
    pub fn pool_use(&self) -> (u32, usize) {
        self.pool().connections()
    }

    pub fn writer_metrics(&self) -> WriterMetrics {
        self.writer_metrics.clone()
    }
}

/// Open and idle connections of a sea-orm pool.
pub(super) fn connections(db: &sea_orm::DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}
