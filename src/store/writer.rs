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

use super::tables::{indexed_array_paths, NewRow};
use super::{array_index, outbox, StoredResource};
use crate::error::Error;
use crate::events::Event;
use crate::resource::ResourceKind;
use entity::{event_outbox, usage, usage_array_value, usage_specification};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    TransactionTrait,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queued job leaves to do once its batch is committed: answer its caller.
type Answer = Box<dyn FnOnce() + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Answer> + Send>;

/// A new resource and the events it announces. Its rows (the resource, its array-value index
/// rows, its outbox rows) are built from it at each attempt to insert it.
pub struct NewResource {
    pub kind: ResourceKind,
    pub row: StoredResource,
    pub events: Vec<Event>,
}

/// The caller of an insert gets its resource back once it is committed.
type Inserted = oneshot::Sender<Result<NewResource, Error>>;

enum Write {
    Insert(Box<NewResource>, Inserted),
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
    /// `commits` counts the batches committed (for the SQLite checkpointer).
    pub fn start(
        db: DatabaseConnection,
        changes: Arc<Notify>,
        commits: Arc<AtomicU64>,
    ) -> std::io::Result<GroupCommit> {
        let (queue, writes) = mpsc::channel(4 * MAX_BATCH);
        let backend = db.get_database_backend();
        let writer = run(db, writes, changes, commits);
        if backend == DatabaseBackend::Sqlite {
            // On SQLite the writer gets a thread of its own: its batch is a chain of round
            // trips to SQLite's connection thread, and as one task among all the request tasks
            // it would wait in the run queue at every step. (PostgreSQL connections are
            // sockets of the main runtime, so there it stays a task.)
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name("tmf635-writer".into())
                .spawn(move || runtime.block_on(writer))?;
        } else {
            tokio::spawn(writer);
        }
        Ok(GroupCommit { queue })
    }

    /// Inserts a new resource in the next batch; answers (handing it back) after that batch
    /// is committed.
    pub async fn insert(&self, resource: NewResource) -> Result<NewResource, Error> {
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

async fn run(
    db: DatabaseConnection,
    mut writes: mpsc::Receiver<Write>,
    changes: Arc<Notify>,
    commits: Arc<AtomicU64>,
) {
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
                commits.fetch_add(1, Ordering::Relaxed);
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
    resources: Vec<(NewResource, Inserted)>,
    answers: &mut Vec<Answer>,
) -> Result<(), DbErr> {
    if resources.is_empty() {
        return Ok(());
    }
    let together = txn.begin().await?;
    let failure = match insert_all(&together, resources.iter().map(|(r, _)| r)).await {
        Ok(()) => {
            together.commit().await?;
            None
        }
        Err(e) => {
            together.rollback().await?;
            Some(e)
        }
    };
    let Some(failure) = failure else {
        for (resource, answer) in resources {
            answers.push(answer_with(answer, Ok(resource)));
        }
        return Ok(());
    };
    if resources.len() == 1 {
        if let Some((_, answer)) = resources.into_iter().next() {
            answers.push(answer_with(answer, Err(Error::Database(failure))));
        }
        return Ok(());
    }
    for (resource, answer) in resources {
        let alone = txn.begin().await?;
        let result = match insert_all(&alone, std::iter::once(&resource)).await {
            Ok(()) => alone.commit().await.map(|()| resource).map_err(Error::from),
            Err(e) => {
                alone.rollback().await?;
                Err(Error::Database(e))
            }
        };
        answers.push(answer_with(answer, result));
    }
    Ok(())
}

fn answer_with(answer: Inserted, result: Result<NewResource, Error>) -> Answer {
    Box::new(move || {
        let _ = answer.send(result);
    })
}

/// One multi-row INSERT per table for the rows of `resources`.
async fn insert_all<'r>(
    db: &impl ConnectionTrait,
    resources: impl Iterator<Item = &'r NewResource>,
) -> Result<(), DbErr> {
    let (mut usages, mut specifications, mut index, mut events) = (vec![], vec![], vec![], vec![]);
    for resource in resources {
        let row = &resource.row;
        match NewRow::of(resource.kind, row) {
            NewRow::Usage(row) => usages.push(row),
            NewRow::UsageSpecification(row) => specifications.push(row),
        }
        let paths = indexed_array_paths(resource.kind);
        index.extend(array_index::rows(paths, &row.id, &row.document));
        events.extend(outbox::rows(&resource.events));
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
