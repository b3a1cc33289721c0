//! Write transactions, committed before anyone is answered.
//!
//! Writes are queued to writer tasks. A writer takes every write queued while it was busy (up
//! to a bound) and commits them in one transaction (group commit): one COMMIT for the whole
//! batch; only then are the callers answered. A write whose batch fails to commit is answered
//! with an error.
//!
//! - New resources (`Insert`: the row, its array-value index rows, its events) go in as one
//!   multi-row INSERT per table (`insert`), each document bound as the text it was serialised
//!   to once; a batch of inserts alone is sent whole: on SQLite BEGIN, the INSERTs and COMMIT
//!   in one call to the connection's thread, on PostgreSQL one statement. Should that fail,
//!   each is retried alone in a savepoint, so a bad one fails only itself.
//! - Any other write (`Job`) runs in a savepoint of its own, so a failing one undoes only
//!   itself.
//!
//! SQLite allows one writer at a time, so there every write goes through one writer, on a
//! connection and a thread of its own. With a database file, its callers are answered by
//! `wal_sync` once the WAL holding the batch is synced, while the writer goes on with the
//! next batch. A batch that fails because the disk did (see `disk_failed`) ends the process:
//! what the WAL holds is then unknown, and SQLite recovers from what the disk has at the next
//! start.
//!
//! On PostgreSQL only creates go through the queue, taken by `POSTGRES_WRITERS` tasks on the
//! store's pool (many round trips become one per batch); updates and deletes run as
//! transactions of their own, side by side.

use super::insert::{insert_statements, one_call, Undo};
use super::lost_session;
use super::wal_sync::{self, Durability, Finished, WalFile};
use super::{checkpoint, StoredResource, WriterMetrics};
use crate::error::Error;
use crate::events::Event;
use crate::resource_kind::ResourceKind;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    TransactionTrait,
};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queued job leaves to do once its batch is committed (and synced): answer its
/// caller.
pub(super) type Answer = Box<dyn FnOnce() + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Answer> + Send>;

/// A new resource and the events it announces. Its rows (the resource, its array-value index
/// rows, its outbox rows) are built from it at each attempt to insert it.
pub struct NewResource {
    pub kind: ResourceKind,
    pub row: StoredResource,
    /// The document's JSON text, as it is answered (the stored text is the same).
    pub json: String,
    pub events: Vec<Event>,
}

/// The caller of an insert gets its resource back once it is committed.
type Inserted = oneshot::Sender<Result<NewResource, Error>>;

enum Write {
    Insert(Box<NewResource>, Inserted),
    Job(Job),
}

/// Writes per commit at most on SQLite: bounds the time the write lock is held and the
/// answers wait.
const MAX_BATCH: usize = 256;

/// Writers on PostgreSQL.
const POSTGRES_WRITERS: usize = 4;
/// Writes a PostgreSQL writer takes at once. PostgreSQL runs the writers' transactions side
/// by side, so a burst is better spread over them than taken whole by the first one free
/// while the others wait.
const POSTGRES_MAX_BATCH: usize = 8;

/// The exit status of a process whose disk failed under the SQLite writer (EX_SOFTWARE).
const DISK_FAILURE_EXIT: i32 = 70;

/// The queue of the writer tasks: one writer on SQLite (one writer at a time is all it
/// allows); several on PostgreSQL, which commits side by side. Whichever writer is idle takes
/// what is queued, so a write never waits behind a busy writer while another is free.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Write>,
}

/// The writers' shared end of the queue: the one holding the lock waits for writes.
type Writes = Arc<tokio::sync::Mutex<mpsc::Receiver<Write>>>;

/// A writer task's connection and what it tells once a batch is committed.
struct Writer {
    db: DatabaseConnection,
    max_batch: usize,
    /// Notified after every committed batch (the local delivery worker).
    changes: Arc<Notify>,
    /// Counts the committed batches (for the SQLite checkpointer).
    commits: Arc<AtomicU64>,
    /// SQLite with a database file: its WAL file, kept within bounds by
    /// `checkpoint::bound_wal`, and the stage that syncs it and answers the batches.
    wal: Option<(PathBuf, SyncStage)>,
    metrics: WriterMetrics,
}

/// The writer's end of `wal_sync`.
struct SyncStage {
    durability: Arc<Durability>,
    finished: std::sync::mpsc::Sender<Finished>,
}

impl GroupCommit {
    /// Starts the writers on `db`: on SQLite one, on a thread of its own (`db` is then its own
    /// connection, committing with `synchronous=NORMAL`, and `wal` the WAL file of a database
    /// file); on PostgreSQL `POSTGRES_WRITERS` tasks sharing `db`'s pool. `commits` counts the
    /// committed batches. Answers how far the writer's batches are durable, where commits are
    /// visible before they are (SQLite with a database file).
    pub fn start(
        db: DatabaseConnection,
        wal: Option<PathBuf>,
        changes: Arc<Notify>,
        commits: Arc<AtomicU64>,
        metrics: WriterMetrics,
    ) -> std::io::Result<(GroupCommit, Option<Arc<Durability>>)> {
        let backend = db.get_database_backend();
        let (queue, writes) = mpsc::channel(4 * MAX_BATCH);
        let writes: Writes = Arc::new(tokio::sync::Mutex::new(writes));
        if backend != DatabaseBackend::Sqlite {
            for _ in 0..POSTGRES_WRITERS {
                let writer = Writer {
                    db: db.clone(),
                    max_batch: POSTGRES_MAX_BATCH,
                    changes: changes.clone(),
                    commits: commits.clone(),
                    wal: None,
                    metrics: metrics.clone(),
                };
                tokio::spawn(run(writer, writes.clone()));
            }
            return Ok((GroupCommit { queue }, None));
        }
        let (wal, durability) = match wal {
            Some(path) => {
                let durability = Durability::new();
                let synced = wal_sync::Synced {
                    changes: changes.clone(),
                    commits: commits.clone(),
                    seconds: metrics.sync.clone(),
                };
                let finished = wal_sync::start(WalFile::open(&path)?, durability.clone(), synced)?;
                let stage = SyncStage {
                    durability: durability.clone(),
                    finished,
                };
                (Some((path, stage)), Some(durability))
            }
            None => (None, None),
        };
        let writer = Writer {
            db,
            max_batch: MAX_BATCH,
            changes,
            commits,
            wal,
            metrics,
        };
        // On SQLite the writer gets a thread of its own: its batch is a chain of round trips
        // to SQLite's connection thread, and as one task among all the request tasks it would
        // wait in the run queue at every step. (PostgreSQL connections are sockets of the main
        // runtime, so there the writers stay tasks.)
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("tmf635-writer".into())
            .spawn(move || runtime.block_on(run(writer, writes)))?;
        Ok((GroupCommit { queue }, durability))
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

async fn run(mut writer: Writer, writes: Writes) {
    let mut batch = Vec::with_capacity(writer.max_batch);
    loop {
        // The lock is held only while waiting: the writes taken, the next idle writer waits.
        let received = {
            let mut queue = writes.lock().await;
            queue.recv_many(&mut batch, writer.max_batch).await
        };
        if received == 0 {
            break;
        }
        let (started, size) = (std::time::Instant::now(), batch.len());
        // A job (update, delete) only ever changes what was committed before it was queued,
        // never a resource created in its own batch, so the inserts can all go after the jobs.
        let (mut inserts, mut jobs) = (Vec::new(), Vec::new());
        for write in batch.drain(..) {
            match write {
                Write::Insert(resource, answer) => inserts.push((*resource, answer)),
                Write::Job(job) => jobs.push(job),
            }
        }
        let mut answers: Vec<Answer> = Vec::with_capacity(size);
        let number = writer.wal.as_ref().map(|(_, s)| s.durability.begin());
        let committed = match writer.commit_batch(jobs, inserts, &mut answers).await {
            Ok(()) => {
                writer.metrics.batch_size.observe(size as f64);
                writer
                    .metrics
                    .commit
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    writes = size,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "batch committed"
                );
                true
            }
            Err(e) => {
                writer.end_if_disk_failed(&e);
                // Dropping the answers tells every caller of the batch that nothing was
                // written.
                tracing::error!(error = %e, writes = size, "a batch of writes failed to commit");
                answers.clear();
                false
            }
        };
        match (&writer.wal, number) {
            (Some((_, stage)), Some(number)) => {
                let finished = Finished {
                    number,
                    committed,
                    answers,
                };
                if stage.finished.send(finished).is_err() {
                    end_process(&"the WAL sync stage has stopped");
                }
            }
            _ if committed => {
                answers.into_iter().for_each(|answer| answer());
                writer.commits.fetch_add(1, Ordering::Relaxed);
                writer.changes.notify_one();
            }
            _ => {}
        }
        if let Some((wal, _)) = &writer.wal {
            checkpoint::bound_wal(&writer.db, wal).await;
        }
    }
}

impl Writer {
    /// Runs the batch in one transaction and commits it; pushes each caller's answer, to be
    /// given once it is committed.
    async fn commit_batch(
        &mut self,
        jobs: Vec<Job>,
        inserts: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        if jobs.is_empty() {
            // The usual batch: inserts only, sent whole, no savepoint around them.
            if self.commit_inserts(&inserts).await? {
                answers.extend(inserts.into_iter().map(inserted));
                return Ok(());
            }
            // The batch failed as a whole: each alone now, so only the faulty ones fail.
            let txn = begin(&self.db).await?;
            self.insert_each(&txn, inserts, answers).await?;
            return txn.commit().await;
        }
        let txn = begin(&self.db).await?;
        for job in jobs {
            answers.push(job(&txn).await);
        }
        self.insert_isolated(&txn, inserts, answers).await?;
        txn.commit().await
    }

    /// Inserts a batch of new resources alone, all or nothing, in as few round trips as the
    /// backend allows: on SQLite BEGIN, every INSERT (`INSERT OR ROLLBACK`: a failure undoes
    /// the whole batch, so SQLite keeps no statement journal) and COMMIT in one call; on
    /// PostgreSQL one statement, atomic on its own. False when it failed and nothing is
    /// committed.
    async fn commit_inserts(&mut self, inserts: &[(NewResource, Inserted)]) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let undo = Undo::Transaction;
        let mut statements = insert_statements(backend, inserts.iter().map(|(r, _)| r), undo);
        let outcome = match backend {
            DatabaseBackend::Sqlite => {
                let outcome = self
                    .db
                    .execute(one_call("BEGIN", statements, "COMMIT"))
                    .await;
                if outcome.is_err() {
                    // Fails harmlessly when what failed was BEGIN itself.
                    let _ = self.db.execute_unprepared("ROLLBACK").await;
                }
                outcome.map(|_| ())
            }
            _ if statements.len() == 1 => match statements.pop() {
                Some(statement) => self.db.execute(statement).await.map(|_| ()),
                None => Ok(()),
            },
            _ => {
                let txn = begin(&self.db).await?;
                let mut outcome = Ok(());
                for statement in statements {
                    outcome = txn.execute(statement).await.map(|_| ());
                    if outcome.is_err() {
                        break;
                    }
                }
                match outcome {
                    Ok(()) => txn.commit().await,
                    Err(e) => {
                        txn.rollback().await?;
                        Err(e)
                    }
                }
            }
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(e) => {
                self.end_if_disk_failed(&e);
                // A lost session is noticed, so that the one-by-one retry of the batch gets a
                // connection checked first (see `lost_session`).
                lost_session::noticed(&e);
                Ok(false)
            }
        }
    }

    /// Ends the process when `error` says the disk failed under SQLite (see `disk_failed`).
    fn end_if_disk_failed(&self, error: &DbErr) {
        if self.db.get_database_backend() == DatabaseBackend::Sqlite && disk_failed(error) {
            end_process(error);
        }
    }

    /// Inserts `resources` together; if that fails, each alone, so only the faulty ones fail.
    /// Pushes each caller's answer. Errs only when the transaction itself is broken.
    async fn insert_isolated(
        &self,
        txn: &DatabaseTransaction,
        resources: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        if resources.is_empty() {
            return Ok(());
        }
        match self
            .try_insert(txn, resources.iter().map(|(r, _)| r))
            .await?
        {
            Ok(()) => {
                answers.extend(resources.into_iter().map(inserted));
                Ok(())
            }
            Err(_) => self.insert_each(txn, resources, answers).await,
        }
    }

    /// Inserts each of `resources` in a savepoint of its own; pushes each caller's answer.
    async fn insert_each(
        &self,
        txn: &DatabaseTransaction,
        resources: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        for (resource, answer) in resources {
            let result = self
                .try_insert(txn, std::iter::once(&resource))
                .await?
                .map(|()| resource)
                .map_err(Error::Database);
            answers.push(answer_with(answer, result));
        }
        Ok(())
    }

    /// Inserts the rows of `resources` in a savepoint: all of them, or (the inner error) none.
    /// The outer error means the transaction is broken.
    async fn try_insert<'r>(
        &self,
        txn: &DatabaseTransaction,
        resources: impl Iterator<Item = &'r NewResource>,
    ) -> Result<Result<(), DbErr>, DbErr> {
        let savepoint = txn.begin().await?;
        match insert_rows(&savepoint, resources).await {
            Ok(()) => {
                savepoint.commit().await?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.end_if_disk_failed(&e);
                savepoint.rollback().await?;
                Ok(Err(e))
            }
        }
    }
}

/// Whether `error` is SQLite saying that the disk failed rather than that a statement was
/// refused: an I/O error (the SQLITE_IOERR family), a full disk (SQLITE_FULL) or a damaged
/// file (SQLITE_CORRUPT). sqlx reports SQLite's extended result code, whose low byte is the
/// primary one.
fn disk_failed(error: &DbErr) -> bool {
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_FULL: i32 = 13;
    let (DbErr::Conn(RuntimeErr::SqlxError(error))
    | DbErr::Exec(RuntimeErr::SqlxError(error))
    | DbErr::Query(RuntimeErr::SqlxError(error))) = error
    else {
        return false;
    };
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i32>().ok());
    matches!(
        code.map(|c| c & 0xff),
        Some(SQLITE_IOERR | SQLITE_CORRUPT | SQLITE_FULL)
    )
}

/// Ends the process without answering anyone: a batch could not be made durable, and no
/// write after it can be trusted to be either.
pub(super) fn end_process(cause: &dyn std::fmt::Display) -> ! {
    tracing::error!(
        "the database's disk failed ({cause}); stopping, unanswered writes are not committed"
    );
    std::process::exit(DISK_FAILURE_EXIT);
}

/// The answer of an insert that went in.
fn inserted((resource, answer): (NewResource, Inserted)) -> Answer {
    answer_with(answer, Ok(resource))
}

fn answer_with(answer: Inserted, result: Result<NewResource, Error>) -> Answer {
    Box::new(move || {
        let _ = answer.send(result);
    })
}

/// Inserts the rows of `resources` (see `insert_statements`) in the caller's transaction.
async fn insert_rows<'r, C: ConnectionTrait>(
    db: &C,
    resources: impl Iterator<Item = &'r NewResource>,
) -> Result<(), DbErr> {
    let statements = insert_statements(db.get_database_backend(), resources, Undo::Statement);
    for statement in statements {
        db.execute(statement).await?;
    }
    Ok(())
}

/// BEGIN on `conn`, sent once more (on another connection) if the first had lost its session:
/// nothing is applied before BEGIN, so nothing can be applied twice.
async fn begin<C: TransactionTrait>(conn: &C) -> Result<DatabaseTransaction, DbErr> {
    match conn.begin().await {
        Err(e) if lost_session::noticed(&e) => conn.begin().await,
        begun => begun,
    }
}

/// Runs `work` in a transaction of its own (a savepoint, when `conn` is a transaction) and
/// commits it, or rolls it back when `work` fails.
pub async fn in_transaction<C, R, F>(conn: &C, work: F) -> Result<R, Error>
where
    C: TransactionTrait,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<R, Error>>,
{
    let txn = begin(conn).await?;
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
