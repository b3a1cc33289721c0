//! Import batches: rows already validated, stored in one transaction together with their
//! creation events and the job's counts, so the counts say exactly what is stored. A row whose
//! id is stored already is skipped; a row the database refuses is rejected alone.

use super::insert::{events_then_rows, insert_statements, Undo};
use super::jobs::{record_counts, Counts};
use super::resource::new_resource;
use super::tenant::TenantStore;
use super::writer::NewResource;
use super::{Committed, Store, Table, IDS_PER_IN};
use crate::error::Error;
use entity::usage_array_value;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityName, QueryFilter, QuerySelect, TransactionTrait,
};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A validated row of an import, ready to insert.
pub struct ImportRow {
    pub line: u64,
    resource: NewResource,
    /// Another id under which the row counts as stored already (see `bulk::row`).
    former_id: Option<String>,
}

impl ImportRow {
    /// The row at `line` whose complete document is `document` (it holds its `id`). It is made
    /// where the file is read, which knows no tenant: `TenantStore::import_batch` gives it the
    /// job's.
    pub fn new<T: Table>(
        line: u64,
        document: Map<String, Value>,
        former_id: Option<String>,
    ) -> Result<ImportRow, Error> {
        Ok(ImportRow {
            line,
            resource: new_resource::<T>(String::new(), document)?,
            former_id,
        })
    }

    fn id(&self) -> &String {
        &self.resource.row.id
    }

    /// The row's id and its former one.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        std::iter::once(self.id()).chain(self.former_id.as_ref())
    }
}

/// What became of a batch's rows.
#[derive(Default)]
pub struct Stored {
    pub created: i64,
    pub skipped: i64,
    /// The lines of the rows the database refused (the error is logged).
    pub refused: Vec<u64>,
}

impl Stored {
    fn add(&mut self, more: Stored) {
        self.created += more.created;
        self.skipped += more.skipped;
        self.refused.extend(more.refused);
    }
}

/// Where the batch before an import batch stands. Its sender dropped means it failed (its
/// error is the job's).
pub struct Turn {
    /// Fired once the batch before has written its events (see `store_rows`).
    pub written: oneshot::Receiver<()>,
    /// The job's counts after the batch before, once it has committed.
    pub committed: oneshot::Receiver<Counts>,
}

impl TenantStore {
    /// Stores `rows` as the tenant's (those whose id the tenant has not stored yet) with their
    /// events, and the job's counts as `counts(before, stored)` computes them, in one
    /// transaction that commits only after the batch before it (`turn`), and only while the
    /// job still has the heartbeat that batch wrote (see `jobs::record_counts`). Fires
    /// `written` once its events are written.
    ///
    /// On PostgreSQL the rows go in while the batch before commits, their events after that
    /// batch's events (so events are numbered in the order of the rows). Rows that share an
    /// id with it (`earlier`, its ids) are written after its commit, where they are seen as
    /// stored rather than refused. On SQLite the writer stores one batch at a time anyway.
    /// Answers at the commit: on SQLite the batch may not be durable yet (see `Committed`).
    pub async fn import_batch<T, F>(
        &self,
        job: String,
        earlier: Arc<HashSet<String>>,
        rows: Vec<ImportRow>,
        turn: Turn,
        written: oneshot::Sender<()>,
        counts: F,
    ) -> Result<Committed<Counts>, Error>
    where
        T: Table,
        F: Fn(&Counts, &Stored) -> Counts + Send + Sync + 'static,
    {
        let tenant = self.name();
        let rows: Vec<ImportRow> = rows
            .into_iter()
            .map(|mut row| {
                row.resource.row.tenant.clone_from(&tenant);
                row
            })
            .collect();
        if self.store.backend() == DatabaseBackend::Sqlite {
            let before = turn.committed.await.map_err(|_| earlier_failed())?;
            let _ = written.send(());
            return self.import_alone::<T, F>(job, before, rows, counts).await;
        }
        let (now, after_turn): (Vec<ImportRow>, Vec<ImportRow>) = rows
            .into_iter()
            .partition(|row| !row.ids().any(|id| earlier.contains(id)));
        let counts = self
            .store
            .write(move |txn| {
                Box::pin(async move {
                    let _ = turn.written.await;
                    let mut stored = store_rows::<T>(txn, &tenant, &now, Some(written)).await?;
                    let before = turn.committed.await.map_err(|_| earlier_failed())?;
                    stored.add(store_rows::<T>(txn, &tenant, &after_turn, None).await?);
                    record_after(txn, &job, &before, &stored, &counts).await
                })
            })
            .await?;
        Ok(Committed::durable_now(counts))
    }

    /// SQLite: the batch in one transaction, first all rows at once with no savepoint (see
    /// `store_whole`), again row by row if the database refused one.
    async fn import_alone<T, F>(
        &self,
        job: String,
        before: Counts,
        rows: Vec<ImportRow>,
        counts: F,
    ) -> Result<Committed<Counts>, Error>
    where
        T: Table,
        F: Fn(&Counts, &Stored) -> Counts + Send + Sync + 'static,
    {
        let (tenant, rows) = (self.name(), Arc::new(rows));
        let (before, counts) = (Arc::new(before), Arc::new(counts));
        let whole = {
            let (job, tenant, rows) = (job.clone(), tenant.clone(), rows.clone());
            let (before, counts) = (before.clone(), counts.clone());
            self.store
                .write_alone(move |db| {
                    Box::pin(async move {
                        let stored = store_whole::<T>(db, &tenant, &rows).await?;
                        record_after(db, &job, &before, &stored, &*counts).await
                    })
                })
                .await
        };
        match whole {
            // A row was refused, and the batch with it: again, each row alone.
            Err(Error::Database(e)) => {
                tracing::debug!(error = %e, "an import batch goes in row by row");
            }
            stored => return stored,
        }
        let counts = self
            .store
            .write(move |txn| {
                Box::pin(async move {
                    let stored = store_rows::<T>(txn, &tenant, &rows, None).await?;
                    record_after(txn, &job, &before, &stored, &*counts).await
                })
            })
            .await?;
        Ok(Committed::durable_now(counts))
    }
}

/// Writes the job's counts after a batch that stored `stored`, as `counts` computes them from
/// the counts `before` it, guarded on the heartbeat the batch before wrote; answers them.
async fn record_after<C, F>(
    db: &C,
    job: &str,
    before: &Counts,
    stored: &Stored,
    counts: &F,
) -> Result<Counts, Error>
where
    C: ConnectionTrait,
    F: Fn(&Counts, &Stored) -> Counts,
{
    let after = counts(before, stored);
    record_counts(db, job, before.heartbeat, &after).await?;
    Ok(after)
}

fn earlier_failed() -> Error {
    Error::Internal("the batch before was not stored".into())
}

impl Store {
    /// PostgreSQL: ANALYZE of `T`'s table and of the array-value index table, which imports
    /// fill. Nothing on SQLite, whose plans do not depend on a table's size (this server never
    /// runs SQLite's ANALYZE).
    pub async fn refresh_statistics<T: Table>(&self) -> Result<(), Error> {
        if self.backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let tables = [
            T::default().table_name().to_string(),
            usage_array_value::Entity.table_name().to_string(),
        ];
        for table in tables {
            let analyze = format!(r#"ANALYZE "{table}""#);
            self.pool()
                .run(|db| db.execute_unprepared(&analyze))
                .await?;
        }
        Ok(())
    }
}

/// SQLite: stores all of `rows` (those not stored yet) or none, with `INSERT OR ROLLBACK`: no
/// savepoint and no statement journal, for which SQLite would copy every page the batch
/// changes. A refused row undoes the whole transaction (the error).
async fn store_whole<T: Table>(
    db: &DatabaseConnection,
    tenant: &str,
    rows: &[ImportRow],
) -> Result<Stored, Error> {
    let (fresh, skipped) = fresh_rows::<T, _>(db, tenant, rows).await?;
    let statements = insert_statements(
        DatabaseBackend::Sqlite,
        fresh.iter().map(|r| &r.resource),
        Undo::Transaction,
    );
    for statement in statements {
        db.execute(statement).await?;
    }
    Ok(Stored {
        created: fresh.len() as i64,
        skipped,
        refused: Vec::new(),
    })
}

/// The rows of `rows` the tenant has not stored yet, and how many it has (under their id or
/// their former one; a second row with one id in a file is a re-sent row, as one already stored
/// is).
async fn fresh_rows<'r, T: Table, C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    rows: &'r [ImportRow],
) -> Result<(Vec<&'r ImportRow>, i64), Error> {
    let ids = rows.iter().flat_map(ImportRow::ids);
    let mut seen = existing_ids::<T, C>(db, tenant, ids.cloned().collect()).await?;
    let mut fresh = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    for row in rows {
        let stored_before = row.former_id.as_ref().is_some_and(|id| seen.contains(id));
        if !stored_before && seen.insert(row.id().clone()) {
            fresh.push(row);
        } else {
            skipped += 1;
        }
    }
    Ok((fresh, skipped))
}

/// Stores the rows of `rows` not stored yet, each row the database refuses left out alone.
/// Fires `events_written` once the batch's events are written, before its rows: the next
/// batch may write its own then, numbered after them.
async fn store_rows<T: Table>(
    txn: &DatabaseTransaction,
    tenant: &str,
    rows: &[ImportRow],
    events_written: Option<oneshot::Sender<()>>,
) -> Result<Stored, Error> {
    if rows.is_empty() {
        return Ok(Stored::default());
    }
    let (fresh, skipped) = fresh_rows::<T, _>(txn, tenant, rows).await?;
    let mut stored = Stored {
        skipped,
        ..Stored::default()
    };
    if try_insert(txn, fresh.iter().copied(), events_written)
        .await?
        .is_ok()
    {
        stored.created += fresh.len() as i64;
        return Ok(stored);
    }
    // Something in the batch was refused: each row alone, so only that one is left out.
    for row in fresh {
        match try_insert(txn, std::iter::once(row), None).await? {
            Ok(()) => stored.created += 1,
            Err(e) => {
                if existing_ids::<T, _>(txn, tenant, vec![row.id().clone()])
                    .await?
                    .is_empty()
                {
                    tracing::warn!(line = row.line, error = %e, "an imported row was refused");
                    stored.refused.push(row.line);
                } else {
                    // Stored meanwhile by another writer: a duplicate like any other.
                    stored.skipped += 1;
                }
            }
        }
    }
    Ok(stored)
}

/// Inserts the rows in a savepoint: all of them or (the inner error) none; their events
/// first, then `events_written` fires (see `store_rows`). The outer error means the
/// transaction itself is broken.
async fn try_insert<'r>(
    txn: &DatabaseTransaction,
    rows: impl Iterator<Item = &'r ImportRow>,
    events_written: Option<oneshot::Sender<()>>,
) -> Result<Result<(), DbErr>, Error> {
    let savepoint = txn.begin().await?;
    let (events, rows) = events_then_rows(
        txn.get_database_backend(),
        rows.map(|r| &r.resource),
        Undo::Statement,
    );
    for (statements, after) in [(events, events_written), (rows, None)] {
        for statement in statements {
            if let Err(e) = savepoint.execute(statement).await {
                savepoint.rollback().await?;
                return Ok(Err(e));
            }
        }
        if let Some(written) = after {
            let _ = written.send(());
        }
    }
    savepoint.commit().await?;
    Ok(Ok(()))
}

/// Those of `ids` the tenant has stored already (another tenant's usage of the same id is no
/// concern of this one's: the key is the tenant and the id).
async fn existing_ids<T: Table, C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    ids: Vec<String>,
) -> Result<HashSet<String>, Error> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(IDS_PER_IN) {
        let stored: Vec<String> = T::find()
            .select_only()
            .column(T::id_column())
            .filter(T::tenant_column().eq(tenant))
            .filter(T::id_column().is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(stored);
    }
    Ok(found)
}
