//! Lists: a page of a tenant's rows and the number that match, by the plan `query::compile`
//! chose (the table's indexes, a walk in the list's order, or the array-value index alone),
//! the page's rows read last and rendered in page order.

use super::resource::Rendered;
use super::tables::rendered_page;
use super::tenant::TenantStore;
use super::Table;
use crate::error::Error;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::sea_query::{Condition, Expr, NullOrdering, Order, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, StreamTrait,
};

/// What a list asks of a table: the filter and order (empty: newest first), and the other
/// ways to answer the same filter when it can use the array-value index.
#[derive(Clone)]
pub struct ListQuery {
    pub filter: Condition,
    pub order: Vec<(SimpleExpr, Order, NullOrdering)>,
    /// `filter` checked row by row, for a walk in the list's order that stops at the page's
    /// end (see `walk_is_cheaper`).
    pub walk: Option<Condition>,
    pub index_count: Option<IndexCount>,
    pub index_scan: Option<IndexScan>,
    /// Most bytes of documents the page may hold (see `rendered_in_order`).
    pub max_bytes: usize,
}

/// A condition on the array-value index (`usage_array_value`) that selects exactly the rows
/// of a list.
#[derive(Clone)]
pub struct IndexCount {
    pub condition: SimpleExpr,
    /// The condition selects at most one index row per resource (a single value), so rows
    /// are counted and paged as they are, without DISTINCT and its temporary B-tree.
    pub one_row_per_resource: bool,
}

/// An index count whose rows are also the page, in usageDate order.
#[derive(Clone)]
pub struct IndexScan {
    pub count: IndexCount,
    pub descending: bool,
}

/// What a row costs a walk (one step along the order's index, one primary-key lookup in the
/// array-value index) against what a match costs the index-driven plan (a lookup of the row,
/// then a sort of all matches): about 1 µs against 4 µs on SQLite (`sqlite3 .timer`, 50k
/// usages, a party on 1 in 10).
const WALK_ROW_COST_RATIO: u64 = 4;

/// Ids from which a PostgreSQL page is rendered in two halves at once (a default page of 100
/// is not).
const SPLIT_FROM: usize = 200;

/// A page of a list and the number of rows that matched.
pub struct Page {
    pub items: Vec<Rendered>,
    pub total: u64,
}

impl TenantStore {
    /// Lists in `order` (by default newest first, ties by id, so pages never overlap) with the
    /// exact number of matching rows; items rendered with `href_prefix`.
    pub async fn list<T: Table>(
        &self,
        query: ListQuery,
        offset: u64,
        limit: u64,
        href_prefix: &str,
    ) -> Result<Page, Error> {
        self.store
            .pool()
            .search(|db| self.list_on::<T>(db, query.clone(), offset, limit, href_prefix))
            .await
    }

    async fn list_on<T: Table>(
        &self,
        db: &DatabaseConnection,
        query: ListQuery,
        offset: u64,
        limit: u64,
        href_prefix: &str,
    ) -> Result<Page, Error> {
        let max_bytes = query.max_bytes;
        // The tenant's rows only; the array-value index's conditions (probe, count, scan) were
        // compiled for this tenant (`query::compile`).
        let mine = T::tenant_column().eq(self.tenant.as_str());
        if let Some(scan) = query.index_scan {
            return self
                .list_by_index::<T>(db, scan, offset, limit, href_prefix, max_bytes)
                .await;
        }
        let total = match &query.index_count {
            Some(count) => count_by_index(db, count).await?,
            None => {
                T::find()
                    .filter(mine.clone())
                    .filter(query.filter.clone())
                    .count(db)
                    .await?
            }
        };
        if limit == 0 || offset >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let filter = match query.walk {
            Some(walk)
                if query.order.is_empty()
                    && self
                        .walk_is_cheaper::<T>(db, total, offset.saturating_add(limit))
                        .await? =>
            {
                walk
            }
            _ => query.filter,
        };
        // The page's ids first (through an index, skipping `offset` rows without reading
        // documents), then only those rows, rendered: a deferred join.
        let mut select = T::find()
            .select_only()
            .column(T::id_column())
            .filter(mine)
            .filter(filter);
        if query.order.is_empty() {
            select = select
                .order_by(T::created_at_column(), Order::Desc)
                .order_by(T::id_column(), Order::Desc);
        }
        for (expr, direction, nulls) in query.order {
            select = select.order_by_with_nulls(expr, direction, nulls);
        }
        let ids: Vec<String> = select
            .offset(offset)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?;
        let items = self
            .rendered_in_order::<T>(db, ids, href_prefix, max_bytes)
            .await?;
        Ok(Page { items, total })
    }

    /// Whether walking the table newest first, checking each row, reaches the page's `end`
    /// sooner than reading all `total` matches from the array-value index and sorting them.
    /// A walk reads about `end * rows / total` rows. Only SQLite is steered: it keeps no
    /// statistics on values, while PostgreSQL's planner picks between the two plans itself.
    async fn walk_is_cheaper<T: Table>(
        &self,
        db: &DatabaseConnection,
        total: u64,
        end: u64,
    ) -> Result<bool, Error> {
        if self.backend() != DatabaseBackend::Sqlite || total == 0 {
            return Ok(false);
        }
        // The largest rowid bounds the row count, and costs one step down the table's B-tree.
        let statement = Statement::from_string(
            DatabaseBackend::Sqlite,
            format!(
                "SELECT COALESCE(MAX(rowid), 0) AS \"rows\" FROM \"{}\"",
                T::default().table_name()
            ),
        );
        let rows: i64 = match db.query_one(statement).await? {
            Some(row) => row.try_get("", "rows")?,
            None => 0,
        };
        let rows = u64::try_from(rows).unwrap_or(0);
        let walked = end.saturating_mul(rows) / total;
        Ok(walked <= total.saturating_mul(WALK_ROW_COST_RATIO))
    }

    /// The rows `ids`, rendered, in the order of `ids` (a row deleted meanwhile is left out),
    /// as many as fit in `max_bytes` (the first always does). Rows stream in page order, and
    /// reading stops at the budget: a page of large documents is cut short, never held whole.
    /// On PostgreSQL a long page is rendered in two halves on two connections at once:
    /// rendering is the database server's work, and one connection keeps only one of its
    /// processes busy. (On SQLite halves gain nothing measurable and hold more memory.)
    pub(super) async fn rendered_in_order<T: Table>(
        &self,
        db: &DatabaseConnection,
        ids: Vec<String>,
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<Vec<Rendered>, Error> {
        if ids.len() < SPLIT_FROM || self.backend() != DatabaseBackend::Postgres {
            return self.rendered::<T>(db, &ids, href_prefix, max_bytes).await;
        }
        let (first, second) = ids.split_at(ids.len() / 2);
        let (mut items, rest) = futures_util::try_join!(
            self.rendered::<T>(db, first, href_prefix, max_bytes),
            self.rendered::<T>(db, second, href_prefix, max_bytes),
        )?;
        if items.len() < first.len() {
            // The first half was cut at the budget (or lost a row deleted meanwhile, which
            // the next page does not miss either way): the page ends there.
            return Ok(items);
        }
        let mut bytes: usize = items.iter().map(|r| r.json.len()).sum();
        for row in rest {
            bytes += row.json.len();
            if bytes > max_bytes {
                break;
            }
            items.push(row);
        }
        Ok(items)
    }

    /// `rendered_in_order` on one connection.
    async fn rendered<T: Table>(
        &self,
        db: &DatabaseConnection,
        ids: &[String],
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<Vec<Rendered>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = rendered_page::<T>(self.backend(), href_prefix, self.tenant.as_str(), ids);
        let mut rows = db.stream(statement).await?;
        let (mut items, mut bytes, mut position) = (Vec::with_capacity(ids.len()), 0, -1);
        while let Some(row) = rows.next().await {
            let row = row?;
            // Page order comes from the join's outer loop over the ids (SQLite) or ORDER BY
            // (PostgreSQL); a row out of order would make the cut at the budget wrong.
            let at: i64 = row.try_get_by_index(0)?;
            if at <= position {
                return Err(Error::Internal("a page's rows came out of order".into()));
            }
            position = at;
            let json: String = row.try_get_by_index(3)?;
            bytes += json.len();
            if bytes > max_bytes && !items.is_empty() {
                break;
            }
            items.push(Rendered {
                id: row.try_get_by_index(1)?,
                revision: row.try_get_by_index(2)?,
                json,
            });
        }
        Ok(items)
    }

    /// A list answered by the array-value index alone: count and page come from one range
    /// scan of `(path, value, usage_date, usage_id)`, and only the page's rows are read.
    /// Same order as the general path: usageDate, then id the same way.
    async fn list_by_index<T: Table>(
        &self,
        db: &DatabaseConnection,
        scan: IndexScan,
        offset: u64,
        limit: u64,
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<Page, Error> {
        use entity::usage_array_value::{Column, Entity};
        let total = count_by_index(db, &scan.count).await?;
        if limit == 0 || offset >= total {
            return Ok(Page {
                items: Vec::new(),
                total,
            });
        }
        let order = if scan.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let mut keys = Entity::find()
            .select_only()
            .column(Column::UsageDate)
            .column(Column::UsageId);
        if !scan.count.one_row_per_resource {
            keys = keys.distinct();
        }
        let keys: Vec<(Option<DateTime<Utc>>, String)> = keys
            .filter(scan.count.condition)
            .order_by(Column::UsageDate, order.clone())
            .order_by(Column::UsageId, order)
            .offset(offset)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?;
        let ids: Vec<String> = keys.into_iter().map(|(_, id)| id).collect();
        let items = self
            .rendered_in_order::<T>(db, ids, href_prefix, max_bytes)
            .await?;
        Ok(Page { items, total })
    }
}

/// The number of resources `count` selects in the array-value index.
async fn count_by_index(db: &DatabaseConnection, count: &IndexCount) -> Result<u64, Error> {
    use entity::usage_array_value::{Column, Entity};
    let counted = if count.one_row_per_resource {
        Expr::col(Column::UsageId).count()
    } else {
        Expr::col(Column::UsageId).count_distinct()
    };
    let total: i64 = Entity::find()
        .select_only()
        .column_as(counted, "total")
        .filter(count.condition.clone())
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or(0);
    Ok(u64::try_from(total).unwrap_or(0))
}
