//! Write transactions, committed durably before anyone is answered.
//!
//! A writer task takes every write queued while it was busy and commits them together (group
//! commit): one COMMIT, one fsync, for the whole batch; only then are the callers answered,
//! and a write whose batch fails to commit is answered with an error.
//!
//! - New resources (`Insert`: the row, its array-value index rows, its events) are data, so
//!   the consecutive inserts of a batch go into one multi-row INSERT per table (`insert`; on
//!   SQLite all of them in one call, on PostgreSQL one statement). Should that fail, each is
//!   retried alone, so a bad one fails only itself.
//! - Any other write (`Job`) runs in a savepoint of its own, so a failing one undoes only
//!   itself.
//!
//! SQLite allows one writer at a time, so every write goes through the task: a pool of writers
//! would only queue on the lock. There a committed batch waits for the WAL to be synced in
//! a stage of its own (`wal_sync`) while the writer goes on with the next one. On PostgreSQL
//! only inserts go through the task, through four writers sharing the queue (many round trips
//! become one per batch); updates and deletes run as transactions of their own, side by side.

use super::insert::{self, Rows};
use super::lane_connection::LaneConnection;
use super::tables::{indexed_array_paths, Table};
use super::wal_sync::{self, Committed, Durability};
use super::{array_index, checkpoint, outbox, StoredResource};
use crate::error::Error;
use crate::events::Event;
use crate::resource::ResourceKind;
use entity::{usage, usage_array_value, usage_specification};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, Statement,
    TransactionTrait,
};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a queued job leaves to do once its batch is committed: answer its caller.
pub(super) type Answer = Box<dyn FnOnce() + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, Answer> + Send>;

/// A new resource and the events it announces. Its rows (the resource, its array-value index
/// rows, its outbox rows) are built from it at each attempt to insert it.
pub struct NewResource {
    pub kind: ResourceKind,
    pub row: StoredResource,
    /// The document's JSON text, as it is stored and answered.
    pub json: String,
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

/// The queue of the writer tasks: one writer on SQLite (one writer at a time is all it
/// allows); several on PostgreSQL, which commits side by side. Whichever writer is idle takes
/// what is queued (on PostgreSQL up to `POSTGRES_MAX_BATCH`), so a write never waits behind a
/// busy writer while another is free.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Write>,
}

/// The writers' shared end of the queue: the one holding the lock waits for writes.
type Writes = Arc<tokio::sync::Mutex<mpsc::Receiver<Write>>>;

/// Writers on PostgreSQL.
const POSTGRES_LANES: usize = 4;
/// Writes a PostgreSQL writer takes at once. PostgreSQL runs the writers' statements side by
/// side, so a burst is better spread over them than taken whole by the first one free while
/// the others wait: with 32 clients, a cap of 8 gave ~9% more creates a second than none, and
/// a p99 ~1.4 ms lower (see BENCHMARKS.md, session 13).
const POSTGRES_MAX_BATCH: usize = 8;

impl GroupCommit {
    /// `commits` counts the batches committed (for the SQLite checkpointer); `url` opens the
    /// PostgreSQL lanes' own connections. On SQLite, when the database is a file, `durable`
    /// is its WAL file and the counters of the WAL sync stage the batches go through before
    /// their callers are answered (see `wal_sync`).
    pub fn start(
        db: DatabaseConnection,
        url: &str,
        changes: Arc<Notify>,
        commits: Arc<AtomicU64>,
        durable: Option<(PathBuf, Arc<Durability>)>,
    ) -> std::io::Result<GroupCommit> {
        let backend = db.get_database_backend();
        let (queue, writes) = mpsc::channel(4 * MAX_BATCH);
        let writes: Writes = Arc::new(tokio::sync::Mutex::new(writes));
        if backend != DatabaseBackend::Sqlite {
            for _ in 0..POSTGRES_LANES {
                let connection = LaneConnection::new(url).map_err(std::io::Error::other)?;
                let writer = Writer {
                    db: db.clone(),
                    connection: Some(connection),
                    durable: None,
                };
                tokio::spawn(run(
                    writer,
                    writes.clone(),
                    changes.clone(),
                    commits.clone(),
                ));
            }
            return Ok(GroupCommit { queue });
        }
        let durable = match durable {
            Some((wal, durability)) => {
                let synced = wal_sync::Synced {
                    changes: changes.clone(),
                    commits: commits.clone(),
                };
                let sync = wal_sync::wal_file(wal.clone());
                let stage = wal_sync::start(sync, durability.clone(), synced)?;
                Some(Durable {
                    stage,
                    durability,
                    wal,
                })
            }
            None => None,
        };
        let writer = Writer {
            db,
            connection: None,
            durable,
        };
        let writer = run(writer, writes, changes, commits);
        // On SQLite the writer gets a thread of its own: its batch is a chain of round trips
        // to SQLite's connection thread, and as one task among all the request tasks it would
        // wait in the run queue at every step. (PostgreSQL connections are sockets of the main
        // runtime, so there the writers stay tasks.)
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("tmf635-writer".into())
            .spawn(move || runtime.block_on(writer))?;
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

/// A writer's connections: the pool's (SQLite: a pool of its own), and on PostgreSQL a
/// connection of its own for the batches of inserts. On SQLite, the stage its committed
/// batches wait in for the WAL sync before their callers are answered.
struct Writer {
    db: DatabaseConnection,
    connection: Option<LaneConnection>,
    durable: Option<Durable>,
}

/// SQLite with a database file: where the writer's committed batches wait for the WAL sync.
struct Durable {
    stage: std::sync::mpsc::Sender<Committed>,
    durability: Arc<Durability>,
    /// The WAL file, kept within bounds by `checkpoint::bound_wal`.
    wal: PathBuf,
}

async fn run(mut writer: Writer, writes: Writes, changes: Arc<Notify>, commits: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The lock is held only while waiting: the writes taken, the next idle writer waits.
    let limit = match writer.connection {
        Some(_) => POSTGRES_MAX_BATCH,
        None => MAX_BATCH,
    };
    loop {
        let mut queue = writes.lock().await;
        let received = queue.recv_many(&mut batch, limit).await;
        drop(queue);
        if received == 0 {
            break;
        }
        let (started, size) = (std::time::Instant::now(), batch.len());
        if writer
            .durable
            .as_ref()
            .is_some_and(|d| d.durability.failed())
        {
            // Dropping the writes tells their callers nothing was written.
            batch.clear();
            continue;
        }
        let number = writer.durable.as_ref().map(|d| d.durability.begin());
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
        let committed = if jobs.is_empty() {
            commit_inserts(&mut writer, inserts, &mut answers).await
        } else {
            async {
                let txn = writer.db.begin().await?;
                for job in jobs {
                    answers.push(job(&txn).await);
                }
                insert_isolated(&txn, inserts, &mut answers).await?;
                txn.commit().await
            }
            .await
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = size, "a batch of writes failed to commit");
            // Dropping the answers tells every caller of the batch that nothing was written.
            answers.clear();
        } else {
            tracing::debug!(
                writes = size,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "batch committed"
            );
        }
        if let (Some(durable), Ok(())) = (&writer.durable, &committed) {
            checkpoint::bound_wal(&writer.db, &durable.wal).await;
        }
        match (&writer.durable, number) {
            // Answered once the WAL is synced; a failed batch goes too, to keep the count.
            (Some(durable), Some(number)) => {
                let sent = durable.stage.send(Committed { number, answers });
                if sent.is_err() {
                    tracing::error!("the WAL sync stage has stopped");
                }
            }
            _ if committed.is_ok() => {
                answers.into_iter().for_each(|answer| answer());
                commits.fetch_add(1, Ordering::Relaxed);
                changes.notify_one();
            }
            _ => {}
        }
    }
}

/// A batch of inserts alone, all or nothing without a savepoint: on SQLite BEGIN, every
/// INSERT and COMMIT in one call (one round trip to the connection's thread, one fsync); on
/// PostgreSQL one statement on the writer's own connection (BEGIN, the statements, COMMIT
/// in the rare batch too large for one). Should it fail, nothing is committed: it is
/// rolled back and the inserts go the usual way, each alone if need be.
async fn commit_inserts(
    writer: &mut Writer,
    inserts: Vec<(NewResource, Inserted)>,
    answers: &mut Vec<Answer>,
) -> Result<(), DbErr> {
    let db = &writer.db;
    let backend = db.get_database_backend();
    // On SQLite a failure rolls the whole batch back at once (then each goes alone below).
    let undo = insert::Undo::Transaction;
    let mut statements = insert_statements(backend, inserts.iter().map(|(r, _)| r), undo);
    let committed = match backend {
        DatabaseBackend::Sqlite => {
            let all = one_call("BEGIN", statements, "COMMIT");
            let committed = db.execute(all).await.is_ok();
            if !committed {
                // Fails harmlessly when the failure was BEGIN itself.
                let _ = db.execute_unprepared("ROLLBACK").await;
            }
            committed
        }
        // One statement (the usual case on PostgreSQL) is atomic on its own.
        _ if statements.len() == 1 => match (statements.pop(), writer.connection.as_mut()) {
            (Some(statement), Some(connection)) => connection.execute(statement).await.is_ok(),
            (Some(statement), None) => db.execute(statement).await.is_ok(),
            (None, _) => false,
        },
        _ => {
            let txn = db.begin().await?;
            let mut failed = false;
            for statement in statements {
                if txn.execute(statement).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                txn.rollback().await?;
                false
            } else {
                txn.commit().await.is_ok()
            }
        }
    };
    if committed {
        for (resource, answer) in inserts {
            answers.push(answer_with(answer, Ok(resource)));
        }
        return Ok(());
    }
    // The batch failed as a whole: each alone now, so only the faulty ones fail.
    let txn = db.begin().await?;
    insert_each(&txn, inserts, answers).await?;
    txn.commit().await
}

/// SQLite: `statements` between `first` and `last` as one statement list, run in one call.
/// Positional `?` values are taken in order across the statements.
fn one_call(first: &str, statements: Vec<Statement>, last: &str) -> Statement {
    let mut sql = format!("{first};\n");
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    sql.push_str(last);
    Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)
}

/// Inserts `resources` together; if that fails, each alone, so only the faulty ones fail.
/// Pushes each caller's answer, to be given after the commit. Errs only when the transaction
/// itself is broken.
async fn insert_isolated(
    txn: &DatabaseTransaction,
    resources: Vec<(NewResource, Inserted)>,
    answers: &mut Vec<Answer>,
) -> Result<(), DbErr> {
    if resources.is_empty() {
        return Ok(());
    }
    let failure = match try_insert(txn, resources.iter().map(|(r, _)| r)).await? {
        Ok(()) => {
            for (resource, answer) in resources {
                answers.push(answer_with(answer, Ok(resource)));
            }
            return Ok(());
        }
        Err(failure) => failure,
    };
    if resources.len() == 1 {
        if let Some((_, answer)) = resources.into_iter().next() {
            answers.push(answer_with(answer, Err(Error::Database(failure))));
        }
        return Ok(());
    }
    insert_each(txn, resources, answers).await
}

/// Inserts each of `resources` in a savepoint of its own; pushes each caller's answer.
async fn insert_each(
    txn: &DatabaseTransaction,
    resources: Vec<(NewResource, Inserted)>,
    answers: &mut Vec<Answer>,
) -> Result<(), DbErr> {
    for (resource, answer) in resources {
        let result = try_insert(txn, std::iter::once(&resource))
            .await?
            .map(|()| resource)
            .map_err(Error::Database);
        answers.push(answer_with(answer, result));
    }
    Ok(())
}

fn answer_with(answer: Inserted, result: Result<NewResource, Error>) -> Answer {
    Box::new(move || {
        let _ = answer.send(result);
    })
}

/// Inserts the rows of `resources` in a savepoint: all of them, or (the inner error) none.
/// The outer error means the transaction is broken.
async fn try_insert<'r>(
    txn: &DatabaseTransaction,
    resources: impl Iterator<Item = &'r NewResource>,
) -> Result<Result<(), DbErr>, DbErr> {
    let backend = txn.get_database_backend();
    let statements = insert_statements(backend, resources, insert::Undo::Statement);
    if backend != DatabaseBackend::Sqlite {
        let savepoint = txn.begin().await?;
        for statement in statements {
            if let Err(e) = savepoint.execute(statement).await {
                savepoint.rollback().await?;
                return Ok(Err(e));
            }
        }
        savepoint.commit().await?;
        return Ok(Ok(()));
    }
    // SQLite: one call for the savepoint and every INSERT. Each call is a round trip to the
    // connection's thread, and under load those hops, not the inserts, were the cost of a
    // batch.
    let statement = one_call(
        "SAVEPOINT tmf635_insert",
        statements,
        "RELEASE tmf635_insert",
    );
    match txn.execute(statement).await {
        Ok(_) => Ok(Ok(())),
        Err(e) => {
            txn.execute_unprepared("ROLLBACK TO tmf635_insert; RELEASE tmf635_insert")
                .await?;
            Ok(Err(e))
        }
    }
}

/// The INSERTs of the rows of `resources` (see `insert`): the resources, their array-value
/// index rows, their events.
fn insert_statements<'r>(
    backend: DatabaseBackend,
    resources: impl Iterator<Item = &'r NewResource>,
    undo: insert::Undo,
) -> Vec<Statement> {
    let (mut usages, mut usage_json) = (vec![], vec![]);
    let (mut specifications, mut specification_json) = (vec![], vec![]);
    let (mut index, mut events) = (vec![], vec![]);
    for resource in resources {
        let row = &resource.row;
        match resource.kind {
            ResourceKind::Usage => {
                usages.push(usage::Entity::active_model(row));
                usage_json.push(resource.json.clone());
            }
            ResourceKind::UsageSpecification => {
                specifications.push(usage_specification::Entity::active_model(row));
                specification_json.push(resource.json.clone());
            }
        }
        let paths = indexed_array_paths(resource.kind);
        index.extend(array_index::rows(paths, &row.id, &row.document));
        events.extend(&resource.events);
    }
    let tables = vec![
        Rows::of::<usage::Entity>(usages, Some((usage::Entity::document_column(), usage_json))),
        Rows::of::<usage_specification::Entity>(
            specifications,
            Some((
                usage_specification::Entity::document_column(),
                specification_json,
            )),
        ),
        Rows::of::<usage_array_value::Entity>(index, None),
        outbox::rows(events),
    ];
    insert::statements_undoing(backend, tables, undo)
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
