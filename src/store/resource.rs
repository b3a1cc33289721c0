//! Create, read, update and delete for either resource table (lists are `list.rs`), with
//! optimistic concurrency: a write applies only to the revision it was computed from, and retries on a
//! fresh read when another writer got there first.

use super::tables::{check_indexed_lengths, json_text, rendered_by_id};
use super::tenant::TenantStore;
use super::writer::NewResource;
use super::{array_index, outbox, Table};
use crate::error::Error;
use crate::events;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, QueryFilter};
use serde_json::{Map, Value};

/// A resource as stored: the document holds `id` and `href` too.
#[derive(Debug, Clone)]
pub struct StoredResource {
    /// The tenant it belongs to (see `store::tenant`).
    pub tenant: String,
    pub id: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub document: Map<String, Value>,
}

/// A resource as a read answers it: the document as JSON text, rendered by the database with
/// the reader's `href` (see `tables::rendered_sql`).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub id: String,
    pub revision: i64,
    pub json: String,
}

pub use super::list::{IndexCount, IndexScan, ListQuery, Page};

/// A new resource of `tenant` (its document holds its `id`) with its creation event, checked
/// for what only the store knows (indexed lengths): what a create inserts, and an import too.
pub(super) fn new_resource<T: Table>(
    tenant: String,
    document: Map<String, Value>,
) -> Result<NewResource, Error> {
    let id = document
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Internal("a new resource has no id".into()))?
        .to_string();
    check_indexed_lengths::<T>(&document)?;
    // Serialised once: the row, the event and the answer all carry this text.
    let json = serde_json::to_string(&document)
        .map_err(|e| Error::Internal(format!("serialising a new resource: {e}")))?;
    let events = events::created(T::KIND, &id, &json);
    let row = StoredResource {
        tenant,
        id,
        revision: 1,
        created_at: Utc::now(),
        document,
    };
    Ok(NewResource {
        kind: T::KIND,
        row,
        json,
        events,
    })
}

/// How often a write re-reads and retries when other writers keep winning the race.
const WRITE_ATTEMPTS: usize = 16;

impl TenantStore {
    /// Stores a new resource (its document holds its `id`) with its creation event; answers
    /// the document as stored, as JSON text.
    pub async fn create<T>(&self, document: Map<String, Value>) -> Result<Rendered, Error>
    where
        T: Table,
    {
        let resource = new_resource::<T>(self.name(), document)?;
        let inserted = self.store.insert(resource).await?;
        Ok(Rendered {
            id: inserted.row.id,
            revision: inserted.row.revision,
            json: inserted.json,
        })
    }

    pub async fn find<T>(&self, id: &str) -> Result<StoredResource, Error>
    where
        T: Table,
    {
        let found = self
            .store
            .pool()
            .read(|db| {
                T::find()
                    .filter(T::tenant_column().eq(self.tenant.as_str()))
                    .filter(T::id_column().eq(id))
                    .one(db)
            })
            .await?;
        found.map(T::stored).ok_or_else(|| Error::NotFound {
            resource: T::KIND.name(),
            id: id.to_string(),
        })
    }

    /// The resource as a read answers it, its `href` being `href_prefix` and its id.
    pub async fn find_rendered<T>(&self, id: &str, href_prefix: &str) -> Result<Rendered, Error>
    where
        T: Table,
    {
        let statement = rendered_by_id::<T>(self.backend(), href_prefix, self.tenant.as_str(), id);
        let row = self
            .store
            .pool()
            .read(|db| db.query_one(statement.clone()))
            .await?;
        let rendered = |row: sea_orm::QueryResult| -> Result<Rendered, DbErr> {
            Ok(Rendered {
                id: row.try_get_by_index(0)?,
                revision: row.try_get_by_index(1)?,
                json: row.try_get_by_index(2)?,
            })
        };
        row.map(rendered)
            .transpose()?
            .ok_or_else(|| Error::NotFound {
                resource: T::KIND.name(),
                id: id.to_string(),
            })
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
            check_indexed_lengths::<T>(&document)?;
            if document == current.document {
                // Nothing written: the answer is what was read.
                return Ok(current);
            }
            let row = StoredResource {
                revision: current.revision + 1,
                document,
                ..current.clone()
            };
            let json = serde_json::to_string(&row.document)
                .map_err(|e| Error::Internal(format!("serialising a resource: {e}")))?;
            let events = events::updated(T::KIND, &current.document, &row.document, &json);
            // Applies only to the revision read; None when another writer got there first.
            let written = self
                .store
                .write(move |txn| {
                    Box::pin(async move {
                        let backend = txn.get_database_backend();
                        let updated = update_of::<T>(backend, &row, current.revision, json)
                            .exec(txn)
                            .await?;
                        if updated.rows_affected != 1 {
                            return Ok(None);
                        }
                        let (before, after) = (&current.document, &row.document);
                        let (tenant, id) = (&row.tenant, &row.id);
                        array_index::write::<T>(txn, tenant, id, Some(before), Some(after)).await?;
                        outbox::insert(txn, tenant, &events).await?;
                        Ok(Some(row))
                    })
                })
                .await?;
            if let Some(row) = written {
                return Ok(row);
            }
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
            let deleted = self
                .store
                .write(move |txn| {
                    Box::pin(async move {
                        let deleted = T::delete_many()
                            .filter(T::tenant_column().eq(&current.tenant))
                            .filter(T::id_column().eq(&current.id))
                            .filter(T::revision_column().eq(current.revision))
                            .exec(txn)
                            .await?;
                        if deleted.rows_affected != 1 {
                            return Ok(false);
                        }
                        let (tenant, id) = (&current.tenant, &current.id);
                        let document = &current.document;
                        array_index::write::<T>(txn, tenant, id, Some(document), None).await?;
                        let events = events::deleted(T::KIND, document);
                        outbox::insert(txn, tenant, &events).await?;
                        Ok(true)
                    })
                })
                .await?;
            if deleted {
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "{} {id} is being changed by other writers; try again",
            T::KIND.name()
        )))
    }
}

/// The UPDATE of a resource to `row`, applying only to revision `from` of it.
fn update_of<T: Table>(
    backend: DatabaseBackend,
    row: &StoredResource,
    from: i64,
    json: String,
) -> sea_orm::UpdateMany<T> {
    T::update_many()
        .set(T::active_model(row))
        .col_expr(T::document_column(), json_text(backend, json))
        .filter(T::tenant_column().eq(&row.tenant))
        .filter(T::id_column().eq(&row.id))
        .filter(T::revision_column().eq(from))
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
