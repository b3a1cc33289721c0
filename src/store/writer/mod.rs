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
//! - On SQLite a write can also run alone (`Alone`: an import's batch), in a transaction of
//!   its own with no savepoint, for which SQLite would copy every page the write changes. Its
//!   caller is answered at the commit with a `Committed`, durable once the WAL is synced, so
//!   it can send its next batch meanwhile.
//!
//! `batch` commits a batch of inserts and jobs.
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

mod batch;
mod committed;

pub use committed::Committed;

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
/// A write in a transaction of its own on the SQLite writer's connection (see
/// `GroupCommit::write_alone`): how it ends, and its caller's answers.
type AloneJob =
    Box<dyn for<'c> FnOnce(&'c DatabaseConnection) -> BoxFuture<'c, (Ending, AloneAnswers)> + Send>;

/// A write alone's caller is answered at its commit (or failure), and told again once the
/// commit is durable.
struct AloneAnswers {
    now: Answer,
    durable: Answer,
}

/// How a write alone ends.
enum Ending {
    Commit,
    RollBack,
    /// Its statement failed because the disk did (see `disk_failed`).
    DiskFailed(String),
}

/// A new resource and the events it announces. Its rows (the resource, its array-value index
/// rows, its outbox rows) are built from it at each attempt to insert it.
pub struct NewResource {
    pub kind: ResourceKind,
    pub row: StoredResource,
    /// The document's JSON text, as it is answered (the stored text is the same).
    pub json: String,
    pub events: Vec<Event>,
}

/// Where a queued write's caller waits for its outcome; dropped unsent, it tells the caller
/// that nothing was written.
type Answering<R> = oneshot::Sender<Result<R, Error>>;
/// The caller of an insert gets its resource back once it is committed.
type Inserted = Answering<NewResource>;

enum Write {
    Insert(Box<NewResource>, Inserted),
    Job(Job),
    Alone(AloneJob),
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
        self.queued(|answer| Write::Insert(Box::new(resource), answer))
            .await
    }

    /// Runs `work` in the next batch; answers after that batch is committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Result<R, Error>>
            + Send
            + 'static,
    {
        self.queued(|answer| {
            Write::Job(Box::new(move |txn| {
                Box::pin(async move { answer_with(answer, in_transaction(txn, work).await) })
            }))
        })
        .await
    }

    /// SQLite: runs `work` on the writer's connection in a transaction of its own, after the
    /// writes batched before it; answers at its commit, before the WAL holding it is synced
    /// (see `Committed`), or (nothing committed) with `work`'s error. Unlike `write` there is
    /// no savepoint around `work`, for which SQLite would copy every page `work` changes:
    /// `work` may use statements that undo the whole transaction when they fail
    /// (`INSERT OR ROLLBACK`).
    pub async fn write_alone<R, F>(&self, work: F) -> Result<Committed<R>, Error>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseConnection) -> BoxFuture<'c, Result<R, Error>>
            + Send
            + 'static,
    {
        let (synced, on_synced) = oneshot::channel();
        let value = self
            .queued(|answer| {
                Write::Alone(Box::new(move |db| {
                    Box::pin(async move {
                        let result = work(db).await;
                        let ending = match &result {
                            Ok(_) => Ending::Commit,
                            Err(Error::Database(e)) if disk_failed(e) => {
                                Ending::DiskFailed(e.to_string())
                            }
                            Err(_) => Ending::RollBack,
                        };
                        let answers = AloneAnswers {
                            now: answer_with(answer, result),
                            durable: Box::new(move || {
                                let _ = synced.send(());
                            }),
                        };
                        (ending, answers)
                    })
                }))
            })
            .await?;
        Ok(Committed::syncing(value, on_synced))
    }

    /// Queues the write `make` makes with the sender of its answer; answers that.
    async fn queued<R>(&self, make: impl FnOnce(Answering<R>) -> Write) -> Result<R, Error> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(make(answer))
            .await
            .map_err(|_| Error::Internal("the writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Internal("the write was not committed".into()))?
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
        let (mut inserts, mut jobs, mut alone) = (Vec::new(), Vec::new(), Vec::new());
        for write in batch.drain(..) {
            match write {
                Write::Insert(resource, answer) => inserts.push((*resource, answer)),
                Write::Job(job) => jobs.push(job),
                Write::Alone(job) => alone.push(job),
            }
        }
        if !(inserts.is_empty() && jobs.is_empty()) {
            let mut answers: Vec<Answer> = Vec::with_capacity(size);
            let number = writer.begin();
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
            writer.finish(number, committed, answers).await;
        }
        for job in alone {
            let number = writer.begin();
            let (committed, answers) = writer.commit_alone(job).await;
            // Its caller goes on (an import prepares its next batch) while the WAL is synced.
            let durable = answers.map(|answers| {
                (answers.now)();
                answers.durable
            });
            writer
                .finish(number, committed, durable.into_iter().collect())
                .await;
        }
    }
}

impl Writer {
    /// Numbers the next transaction, where commits are answered once synced.
    fn begin(&self) -> Option<u64> {
        self.wal.as_ref().map(|(_, s)| s.durability.begin())
    }

    /// Gives the answers of transaction `number` once it is durable (committed or not: the
    /// answers of one that failed say so), and keeps the WAL within bounds.
    async fn finish(&self, number: Option<u64>, committed: bool, answers: Vec<Answer>) {
        match (&self.wal, number) {
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
            _ => {
                answers.into_iter().for_each(|answer| answer());
                if committed {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    self.changes.notify_one();
                }
            }
        }
        if let Some((wal, _)) = &self.wal {
            checkpoint::bound_wal(&self.db, wal).await;
        }
    }

    /// Runs `job` between BEGIN and COMMIT (ROLLBACK when it failed, or when COMMIT fails;
    /// the process ends when it failed because the disk did, as for a batch); answers whether
    /// it is committed, and its caller's answers: none when nothing is committed but the job
    /// does not know it (dropped, its answer's sender tells its caller so).
    async fn commit_alone(&self, job: AloneJob) -> (bool, Option<AloneAnswers>) {
        if let Err(e) = self.db.execute_unprepared("BEGIN").await {
            self.end_if_disk_failed(&e);
            tracing::error!(error = %e, "a write could not begin");
            return (false, None);
        }
        let (ending, answers) = job(&self.db).await;
        match ending {
            Ending::DiskFailed(cause) => end_process(&cause),
            Ending::Commit => match self.db.execute_unprepared("COMMIT").await {
                Ok(_) => (true, Some(answers)),
                Err(e) => {
                    self.end_if_disk_failed(&e);
                    tracing::error!(error = %e, "a write failed to commit");
                    let _ = self.db.execute_unprepared("ROLLBACK").await;
                    (false, None)
                }
            },
            Ending::RollBack => {
                // Fails harmlessly when a statement's `OR ROLLBACK` has undone the transaction.
                let _ = self.db.execute_unprepared("ROLLBACK").await;
                (false, Some(answers))
            }
        }
    }

    /// Ends the process when `error` says the disk failed under SQLite (see `disk_failed`).
    fn end_if_disk_failed(&self, error: &DbErr) {
        if self.db.get_database_backend() == DatabaseBackend::Sqlite && disk_failed(error) {
            end_process(error);
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

/// The answer `result` to give through `answer` once its transaction is durable.
fn answer_with<R: Send + 'static>(answer: Answering<R>, result: Result<R, Error>) -> Answer {
    Box::new(move || {
        let _ = answer.send(result);
    })
}

/// BEGIN on `conn`, sent once more (on another connection) if the first had lost its session:
/// nothing is applied before BEGIN, so nothing can be applied twice.
pub(super) async fn begin<C: TransactionTrait>(conn: &C) -> Result<DatabaseTransaction, DbErr> {
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
