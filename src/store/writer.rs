//! Write transactions, committed durably before anyone is answered.
//!
//! PostgreSQL: each write is a transaction of its own; the server already flushes concurrent
//! commits together.
//!
//! SQLite: one writer holds the lock at a time and every commit is an fsync, so a pool of
//! writers spends its time queueing on the lock. Instead one writer task takes every write
//! queued while it was busy and commits them together (group commit): each runs in a savepoint
//! of its own, so a failing write undoes only itself; one COMMIT (one fsync) makes all of them
//! durable; only then are their callers answered. A write whose batch fails to commit is
//! answered with an error.

use crate::error::Error;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queued write leaves to do once its batch is committed: answer its caller.
type Answer = Box<dyn FnOnce() + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Answer> + Send>;

/// Writes per commit at most: bounds the time the write lock is held and the answers wait.
const MAX_BATCH: usize = 256;

/// The queue of the SQLite writer task.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task; it ends when the last `GroupCommit` is dropped.
    pub fn start(db: DatabaseConnection, changes: Arc<Notify>) -> GroupCommit {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(db, jobs, changes));
        GroupCommit { queue }
    }

    /// Runs `work` in the next batch; answers after that batch is committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<R, Error>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |txn| {
            Box::pin(async move {
                let result = in_transaction(txn, work).await;
                Box::new(move || {
                    let _ = answer.send(result);
                }) as Answer
            })
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| Error::Internal("the writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Internal("the write was not committed".into()))?
    }
}

async fn run(db: DatabaseConnection, mut jobs: mpsc::Receiver<Job>, changes: Arc<Notify>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut answers = Vec::with_capacity(batch.len());
        let committed = async {
            let txn = db.begin().await?;
            for job in batch.drain(..) {
                answers.push(job(&txn).await);
            }
            txn.commit().await
        }
        .await;
        batch.clear();
        match committed {
            Ok(()) => {
                answers.into_iter().for_each(|answer| answer());
                changes.notify_one();
            }
            // Dropping the answers tells every caller of the batch that nothing was written.
            Err(e) => {
                tracing::error!(error = %e, writes = answers.len(), "a batch of writes failed to commit")
            }
        }
    }
}

/// Runs `work` in a transaction of its own (a savepoint, when `conn` is a transaction) and
/// commits it, or rolls it back when `work` fails.
pub async fn in_transaction<C, R, F>(conn: &C, work: F) -> Result<R, Error>
where
    C: TransactionTrait,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<R, Error>>,
{
    let txn = conn.begin().await?;
    match work(&txn).await {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}
