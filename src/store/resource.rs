//! Create, read, list, update and delete for either resource table, with optimistic
//! concurrency: a write applies only to the revision it was computed from, and retries on a
//! fresh read when another writer got there first.

use super::{outbox, Store, Table};
use crate::error::Error;
use crate::events;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, NullOrdering, Order, SimpleExpr};
use sea_orm::{
    ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{Map, Value};

/// A resource as stored: the document holds `id` and `href` too.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub id: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub document: Map<String, Value>,
}

/// A page of a list and the number of rows that matched.
pub struct Page {
    pub items: Vec<StoredResource>,
    pub total: u64,
}

/// How often a write re-reads and retries when other writers keep winning the race.
const WRITE_ATTEMPTS: usize = 16;

impl Store {
    pub async fn create<T>(&self, document: Map<String, Value>) -> Result<StoredResource, Error>
    where
        T: Table,
    {
        let id = document
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Internal("a new resource has no id".into()))?
            .to_string();
        let row = StoredResource {
            id,
            revision: 1,
            created_at: Utc::now(),
            document,
        };
        let txn = self.db().begin().await?;
        T::insert(T::active_model(&row))
            .exec_without_returning(&txn)
            .await?;
        outbox::insert(&txn, events::created(T::KIND, &row.document)).await?;
        txn.commit().await?;
        self.changed();
        Ok(row)
    }

    pub async fn find<T>(&self, id: &str) -> Result<StoredResource, Error>
    where
        T: Table,
    {
        T::find()
            .filter(T::id_column().eq(id))
            .one(self.db())
            .await?
            .map(T::stored)
            .ok_or_else(|| Error::NotFound {
                resource: T::KIND.name(),
                id: id.to_string(),
            })
    }

    /// Lists in `order` (by default newest first, ties by id, so pages never overlap) with the
    /// exact number of matching rows.
    pub async fn list<T: Table>(
        &self,
        filter: Condition,
        order: Vec<(SimpleExpr, Order, NullOrdering)>,
        offset: u64,
        limit: u64,
    ) -> Result<Page, Error> {
        let total = T::find().filter(filter.clone()).count(self.db()).await?;
        if limit == 0 || offset >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let mut select = T::find().filter(filter);
        if order.is_empty() {
            select = select
                .order_by(T::created_at_column(), Order::Desc)
                .order_by(T::id_column(), Order::Desc);
        }
        for (expr, direction, nulls) in order {
            select = select.order_by_with_nulls(expr, direction, nulls);
        }
        let items = select
            .offset(offset)
            .limit(limit)
            .all(self.db())
            .await?
            .into_iter()
            .map(T::stored)
            .collect();
        Ok(Page { items, total })
    }

    /// Replaces the document by `change(current)`, emitting the events of the difference.
    /// `expected_revision` (from If-Match) makes the write fail with 412 if anyone changed
    /// the resource since the client read it.
    pub async fn update<T, F>(
        &self,
        id: &str,
        expected_revision: Option<&[i64]>,
        change: F,
    ) -> Result<StoredResource, Error>
    where
        T: Table,
        F: Fn(&Map<String, Value>) -> Result<Map<String, Value>, Error>,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.find::<T>(id).await?;
            check_revision(&current, expected_revision)?;
            let document = change(&current.document)?;
            if document == current.document {
                return Ok(current);
            }
            let row = StoredResource {
                revision: current.revision + 1,
                document,
                ..current.clone()
            };
            let txn = self.db().begin().await?;
            let updated = T::update_many()
                .set(T::active_model(&row))
                .filter(T::id_column().eq(id))
                .filter(T::revision_column().eq(current.revision))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 1 {
                let events = events::updated(T::KIND, &current.document, &row.document);
                outbox::insert(&txn, events).await?;
                txn.commit().await?;
                self.changed();
                return Ok(row);
            }
            txn.rollback().await?;
        }
        Err(Error::Conflict(format!(
            "{} {id} is being changed by other writers; try again",
            T::KIND.name()
        )))
    }

    pub async fn delete<T>(&self, id: &str, expected_revision: Option<&[i64]>) -> Result<(), Error>
    where
        T: Table,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.find::<T>(id).await?;
            check_revision(&current, expected_revision)?;
            let txn = self.db().begin().await?;
            let deleted = T::delete_many()
                .filter(T::id_column().eq(id))
                .filter(T::revision_column().eq(current.revision))
                .exec(&txn)
                .await?;
            if deleted.rows_affected == 1 {
                outbox::insert(&txn, events::deleted(T::KIND, &current.document)).await?;
                txn.commit().await?;
                self.changed();
                return Ok(());
            }
            txn.rollback().await?;
        }
        Err(Error::Conflict(format!(
            "{} {id} is being changed by other writers; try again",
            T::KIND.name()
        )))
    }
}

fn check_revision(current: &StoredResource, expected: Option<&[i64]>) -> Result<(), Error> {
    match expected {
        Some(revisions) if !revisions.contains(&current.revision) => {
            Err(Error::PreconditionFailed(format!(
                "the resource has changed since it was read (If-Match does not match revision {})",
                current.revision
            )))
        }
        _ => Ok(()),
    }
}
