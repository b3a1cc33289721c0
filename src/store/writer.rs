//! Write transactions, committed durably before anyone is answered.
//!
//! One writer task per instance takes every write queued while it was busy and commits them
//! together (group commit): one COMMIT, one fsync, for the whole batch; only then are the
//! callers answered, and a write whose batch fails to commit is answered with an error.
//!
//! - New resources (`Insert`: the row, its array-value index rows, its events) are data, so
//!   the consecutive inserts of a batch go into one multi-row INSERT per table. Should that
//!   fail, each is retried alone, so a bad one fails only itself.
//! - Any other write (`Job`) runs in a savepoint of its own, so a failing one undoes only
//!   itself.
//!
//! SQLite allows one writer at a time, so every write goes through the task: a pool of writers
//! would only queue on the lock. On PostgreSQL only inserts do (many round trips become a few
//! per batch); updates and deletes run as transactions of their own, side by side.

use super::tables::NewRow;
use crate::error::Error;
use entity::{event_outbox, usage, usage_array_value, usage_specification};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, TransactionTrait,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queued job leaves to do once its batch is committed: answer its caller.
type Answer = Box<dyn FnOnce() + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Answer> + Send>;

/// The rows a new resource adds: itself, its array-value index rows and its events.
#[derive(Clone)]
pub struct NewResource {
    pub row: NewRow,
    pub index: Vec<usage_array_value::ActiveModel>,
    pub events: Vec<event_outbox::ActiveModel>,
}

enum Write {
    Insert(Box<NewResource>, oneshot::Sender<Result<(), Error>>),
    Job(Job),
}

/// Writes per commit at most: bounds the time the write lock is held and the answers wait.
const MAX_BATCH: usize = 256;
/// Rows per INSERT statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// values at the widest table (11 columns).
const ROWS_PER_STATEMENT: usize = 500;

/// The queue of the writer task.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Write>,
}

impl GroupCommit {
    /// Starts the writer task; it ends when the last `GroupCommit` is dropped.
    pub fn start(db: DatabaseConnection, changes: Arc<Notify>) -> GroupCommit {
        let (queue, writes) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(db, writes, changes));
        GroupCommit { queue }
    }

    /// Inserts a new resource in the next batch; answers after that batch is committed.
    pub async fn insert(&self, resource: NewResource) -> Result<(), Error> {
        let (answer, answered) = oneshot::channel();
        self.send(Write::Insert(Box::new(resource), answer)).await?;
        answered
            .await
            .map_err(|_| Error::Internal("the write was not committed".into()))?
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
        self.send(Write::Job(job)).await?;
        answered
            .await
            .map_err(|_| Error::Internal("the write was not committed".into()))?
    }

    async fn send(&self, write: Write) -> Result<(), Error> {
        self.queue
            .send(write)
            .await
            .map_err(|_| Error::Internal("the writer has stopped".into()))
    }
}

async fn run(db: DatabaseConnection, mut writes: mpsc::Receiver<Write>, changes: Arc<Notify>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while writes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let committed = async {
            let txn = db.begin().await?;
            let mut inserts = Vec::new();
            for write in batch.drain(..) {
                match write {
                    Write::Insert(resource, answer) => inserts.push((*resource, answer)),
                    Write::Job(job) => {
                        // Inserts queued before the job are written before it.
                        insert_isolated(&txn, std::mem::take(&mut inserts), &mut answers).await?;
                        answers.push(job(&txn).await);
                    }
                }
            }
            insert_isolated(&txn, inserts, &mut answers).await?;
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

/// Inserts `resources` together in a savepoint; if that fails, each alone in a savepoint of
/// its own, so only the faulty ones fail. Pushes each caller's answer, to be given after the
/// commit. Errs only when the transaction itself is broken.
async fn insert_isolated(
    txn: &DatabaseTransaction,
    resources: Vec<(NewResource, oneshot::Sender<Result<(), Error>>)>,
    answers: &mut Vec<Answer>,
) -> Result<(), DbErr> {
    if resources.is_empty() {
        return Ok(());
    }
    let together = txn.begin().await?;
    match insert_all(&together, resources.iter().map(|(r, _)| r.clone())).await {
        Ok(()) => {
            together.commit().await?;
            for (_, answer) in resources {
                answers.push(Box::new(move || {
                    let _ = answer.send(Ok(()));
                }));
            }
            return Ok(());
        }
        Err(e) if resources.len() == 1 => {
            together.rollback().await?;
            let error = Error::Database(e);
            if let Some((_, answer)) = resources.into_iter().next() {
                answers.push(Box::new(move || {
                    let _ = answer.send(Err(error));
                }));
            }
            return Ok(());
        }
        Err(_) => together.rollback().await?,
    }
    for (resource, answer) in resources {
        let alone = txn.begin().await?;
        let result = match insert_all(&alone, std::iter::once(resource)).await {
            Ok(()) => alone.commit().await.map_err(Error::from),
            Err(e) => {
                alone.rollback().await?;
                Err(Error::Database(e))
            }
        };
        answers.push(Box::new(move || {
            let _ = answer.send(result);
        }));
    }
    Ok(())
}

/// One multi-row INSERT per table for the rows of `resources`.
async fn insert_all(
    db: &impl ConnectionTrait,
    resources: impl Iterator<Item = NewResource>,
) -> Result<(), DbErr> {
    let (mut usages, mut specifications, mut index, mut events) = (vec![], vec![], vec![], vec![]);
    for resource in resources {
        match resource.row {
            NewRow::Usage(row) => usages.push(row),
            NewRow::UsageSpecification(row) => specifications.push(row),
        }
        index.extend(resource.index);
        events.extend(resource.events);
    }
    insert_many::<usage::Entity>(db, usages).await?;
    insert_many::<usage_specification::Entity>(db, specifications).await?;
    insert_many::<usage_array_value::Entity>(db, index).await?;
    insert_many::<event_outbox::Entity>(db, events).await
}

async fn insert_many<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Vec<E::ActiveModel>,
) -> Result<(), DbErr>
where
    E::ActiveModel: Send,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
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
