//! Exports read the usages a query selects in pages along the id index (keyset: each page
//! starts after the last id of the one before), so a whole table streams out in flat memory
//! and no page repeats or skips a row, whatever is written meanwhile. A list streamed whole
//! (`GET /usage` as NDJSON) reads its pages in the list's own order the same way: newest
//! first along the (created_at, id) index, or, sorted, by offset.

use super::resource::Rendered;
use super::tenant::TenantStore;
use super::Table;
use crate::error::Error;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, NullOrdering, Order, SimpleExpr};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

/// Where the next page of a list streamed whole starts.
#[derive(Clone, Debug)]
pub enum Position {
    /// After skipping this many matches: a sorted list (its keys are expressions on the
    /// document, with no index to step along), or the first page of any list.
    Offset(u64),
    /// After this row of the default order (newest first): a keyset step along the
    /// (tenant, created_at, id) index, whose cost does not grow with the depth.
    After(DateTime<Utc>, String),
}

impl TenantStore {
    /// Up to `limit` of the tenant's rows matching `filter` with ids after `after`, in id
    /// order, rendered with
    /// `href_prefix`; fewer when their documents pass `max_bytes` (at least one).
    pub async fn export_page<T: Table>(
        &self,
        filter: Condition,
        after: Option<String>,
        limit: u64,
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<Vec<Rendered>, Error> {
        // On the list pool, as a list page: its cost grows with the data the filter passes
        // over, and its pages are many.
        self.store
            .pool()
            .search(|db| {
                let (filter, after) = (filter.clone(), after.clone());
                async move {
                    let mut select = T::find()
                        .select_only()
                        .column(T::id_column())
                        .filter(T::tenant_column().eq(self.tenant.as_str()))
                        .filter(filter);
                    if let Some(after) = after {
                        select = select.filter(T::id_column().gt(after));
                    }
                    let ids: Vec<String> = select
                        .order_by(T::id_column(), Order::Asc)
                        .limit(limit)
                        .into_tuple()
                        .all(db)
                        .await?;
                    self.rendered_in_order::<T>(db, ids, href_prefix, max_bytes)
                        .await
                }
            })
            .await
    }

    /// Up to `limit` of the tenant's rows of a list (`filter`, in `order`, or newest first when it is empty)
    /// from `from`, rendered with `href_prefix` and cut at `max_bytes` (at least one), and
    /// where the page after them starts (None: this was the last).
    pub async fn list_page<T: Table>(
        &self,
        filter: Condition,
        order: Vec<(SimpleExpr, Order, NullOrdering)>,
        from: Position,
        limit: u64,
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<(Vec<Rendered>, Option<Position>), Error> {
        self.store
            .pool()
            .search(|db| {
                let (filter, order, from) = (filter.clone(), order.clone(), from.clone());
                async move {
                    let mut select = T::find()
                        .select_only()
                        .column(T::id_column())
                        .column(T::created_at_column())
                        .filter(T::tenant_column().eq(self.tenant.as_str()))
                        .filter(filter);
                    let sorted = !order.is_empty();
                    if !sorted {
                        if let Position::After(at, id) = &from {
                            // A row value, which both backends read as one range of the index
                            // (an OR of the two columns is not, when many rows share a time).
                            let key = |a: SimpleExpr, b: SimpleExpr| Expr::tuple([a, b]);
                            select = select.filter(
                                key(
                                    Expr::col(T::created_at_column()).into(),
                                    Expr::col(T::id_column()).into(),
                                )
                                .lt(key(Expr::val(*at).into(), Expr::val(id.clone()).into())),
                            );
                        }
                        select = select
                            .order_by(T::created_at_column(), Order::Desc)
                            .order_by(T::id_column(), Order::Desc);
                    }
                    for (expr, direction, nulls) in order {
                        select = select.order_by_with_nulls(expr, direction, nulls);
                    }
                    let offset = match from {
                        Position::Offset(n) => n,
                        Position::After(..) => 0,
                    };
                    let keys: Vec<(String, DateTime<Utc>)> = select
                        .offset(offset)
                        .limit(limit)
                        .into_tuple()
                        .all(db)
                        .await?;
                    let ids = keys.iter().map(|(id, _)| id.clone()).collect();
                    let items = self
                        .rendered_in_order::<T>(db, ids, href_prefix, max_bytes)
                        .await?;
                    let whole = items.len() == keys.len() && (keys.len() as u64) < limit;
                    let next = match items.len().checked_sub(1).map(|last| &keys[last]) {
                        None => None,
                        Some(_) if whole => None,
                        Some((id, at)) if !sorted => Some(Position::After(*at, id.clone())),
                        Some(_) => Some(Position::Offset(offset + items.len() as u64)),
                    };
                    Ok((items, next))
                }
            })
            .await
    }
}
