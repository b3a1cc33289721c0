//! Import and export jobs (`bulk_job`): created, read, listed, and moved through their states
//! by guarded updates, so two instances never both run or fail the same job.

use super::tenant::TenantStore;
use super::Store;
use crate::error::Error;
use chrono::{DateTime, SubsecRound, Utc};
use entity::bulk_job::{ActiveModel, Column, Entity as BulkJob, Model};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

pub const NOT_STARTED: &str = "notStarted";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

pub const IMPORT: &str = "import";
pub const EXPORT: &str = "export";

/// What a running import has done so far, written with each batch it stores.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub read: i64,
    pub created: i64,
    pub skipped: i64,
    pub rejected: i64,
    /// The first errors, as the JSON array text stored in `bulk_job.errors`.
    pub errors: String,
    /// The runner's lease: the `updated_at` it wrote last. Each batch is stored only if the
    /// job still has it, so a runner whose job was taken over stops at its next batch.
    pub heartbeat: DateTime<Utc>,
}

impl Counts {
    pub fn of(job: &Model) -> Counts {
        Counts {
            read: job.rows_read,
            created: job.rows_created,
            skipped: job.rows_skipped,
            rejected: job.rows_rejected,
            errors: job.errors.clone(),
            heartbeat: job.updated_at,
        }
    }
}

/// The time now as both databases keep it (microseconds), so a time written can be matched.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new job, with nothing read yet; its tenant is set when it is stored
/// (`TenantStore::create_job`).
pub fn new_job(kind: &str, status: &str, content_type: &str) -> Model {
    let now = now();
    Model {
        tenant: String::new(),
        id: crate::resource_kind::new_id(),
        kind: kind.into(),
        status: status.into(),
        content_type: content_type.into(),
        href_prefix: None,
        query: None,
        rows_read: 0,
        rows_created: 0,
        rows_skipped: 0,
        rows_rejected: 0,
        errors: "[]".into(),
        message: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
        order_rows: None,
    }
}

impl TenantStore {
    /// Stores a new job of the tenant.
    pub async fn create_job(&self, mut job: Model) -> Result<Model, Error> {
        job.tenant = self.name();
        let row = active(job.clone());
        self.store
            .write(move |txn| {
                Box::pin(async move {
                    BulkJob::insert(row).exec_without_returning(txn).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(job)
    }

    pub async fn job(&self, kind: &'static str, id: &str) -> Result<Model, Error> {
        let found = self
            .store
            .pool()
            .run(|db| async move {
                BulkJob::find_by_id(id)
                    .filter(Column::Tenant.eq(self.tenant.as_str()))
                    .filter(Column::Kind.eq(kind))
                    .one(db)
                    .await
            })
            .await?;
        found.ok_or_else(|| Error::NotFound {
            resource: if kind == IMPORT {
                "importJob"
            } else {
                "exportJob"
            },
            id: id.to_string(),
        })
    }

    /// The tenant's jobs of a kind, newest first.
    pub async fn jobs(&self, kind: &str, offset: u64, limit: u64) -> Result<Vec<Model>, Error> {
        let jobs = self
            .store
            .pool()
            .run(|db| async move {
                BulkJob::find()
                    .filter(Column::Tenant.eq(self.tenant.as_str()))
                    .filter(Column::Kind.eq(kind))
                    .order_by_desc(Column::CreatedAt)
                    .order_by_desc(Column::Id)
                    .offset(offset)
                    .limit(limit)
                    .all(db)
                    .await
            })
            .await?;
        Ok(jobs)
    }
}

impl Store {
    /// Imports (of every tenant) in `running` or `notStarted` whose runner has not written since `before`.
    pub async fn stale_imports(&self, before: DateTime<Utc>) -> Result<Vec<Model>, Error> {
        let jobs = self
            .pool()
            .run(|db| async move {
                BulkJob::find()
                    .filter(Column::Kind.eq(IMPORT))
                    .filter(Column::Status.is_in([RUNNING, NOT_STARTED]))
                    .filter(Column::UpdatedAt.lt(before))
                    .all(db)
                    .await
            })
            .await?;
        Ok(jobs)
    }

    /// Moves a job from `status` to `running`, if it is still there (and, for a stale job
    /// taken over, still has the `heartbeat` it was seen with): the one instance whose update
    /// applies runs it. Answers its new heartbeat when it applied.
    pub async fn claim_job(
        &self,
        id: &str,
        status: &str,
        heartbeat: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let (id, status) = (id.to_string(), status.to_string());
        let now = now();
        self.write(move |txn| {
            Box::pin(async move {
                let mut update = BulkJob::update_many()
                    .col_expr(Column::Status, Expr::value(RUNNING))
                    .col_expr(Column::UpdatedAt, Expr::value(now))
                    .filter(Column::Id.eq(id))
                    .filter(Column::Status.eq(status));
                if let Some(heartbeat) = heartbeat {
                    update = update.filter(Column::UpdatedAt.eq(heartbeat));
                }
                Ok((update.exec(txn).await?.rows_affected == 1).then_some(now))
            })
        })
        .await
    }

    /// Ends a job still running or not started, and still with the heartbeat `seen` (when
    /// given), with `status` and `message`; false when it had moved on.
    pub async fn end_job(
        &self,
        id: &str,
        seen: Option<DateTime<Utc>>,
        status: &'static str,
        message: Option<String>,
    ) -> Result<bool, Error> {
        let id = id.to_string();
        self.write(move |txn| {
            Box::pin(async move {
                let now = now();
                let mut update = BulkJob::update_many()
                    .col_expr(Column::Status, Expr::value(status))
                    .col_expr(Column::Message, Expr::value(message))
                    .col_expr(Column::UpdatedAt, Expr::value(now))
                    .col_expr(Column::CompletedAt, Expr::value(Some(now)))
                    .filter(Column::Id.eq(id))
                    .filter(Column::Status.is_in([RUNNING, NOT_STARTED]));
                if let Some(heartbeat) = seen {
                    update = update.filter(Column::UpdatedAt.eq(heartbeat));
                }
                Ok(update.exec(txn).await?.rows_affected == 1)
            })
        })
        .await
    }
}

/// Writes a running job's counts and new heartbeat in the caller's transaction, if it still
/// has the heartbeat `previous`; else an error, so the batch written with it rolls back (the
/// job was taken over or failed as stale meanwhile).
pub(super) async fn record_counts<C: ConnectionTrait>(
    txn: &C,
    id: &str,
    previous: DateTime<Utc>,
    counts: &Counts,
) -> Result<(), Error> {
    let done = BulkJob::update_many()
        .col_expr(Column::RowsRead, Expr::value(counts.read))
        .col_expr(Column::RowsCreated, Expr::value(counts.created))
        .col_expr(Column::RowsSkipped, Expr::value(counts.skipped))
        .col_expr(Column::RowsRejected, Expr::value(counts.rejected))
        .col_expr(Column::Errors, Expr::value(counts.errors.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(counts.heartbeat))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(RUNNING))
        .filter(Column::UpdatedAt.eq(previous))
        .exec(txn)
        .await?;
    if done.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "import job {id} is no longer running"
        )))
    }
}

/// Every column of a job, set for an insert.
fn active(job: Model) -> ActiveModel {
    {
        ActiveModel {
            tenant: Set(job.tenant),
            id: Set(job.id),
            kind: Set(job.kind),
            status: Set(job.status),
            content_type: Set(job.content_type),
            href_prefix: Set(job.href_prefix),
            query: Set(job.query),
            rows_read: Set(job.rows_read),
            rows_created: Set(job.rows_created),
            rows_skipped: Set(job.rows_skipped),
            rows_rejected: Set(job.rows_rejected),
            errors: Set(job.errors),
            message: Set(job.message),
            created_at: Set(job.created_at),
            updated_at: Set(job.updated_at),
            completed_at: Set(job.completed_at),
            order_rows: Set(job.order_rows),
        }
    }
}
