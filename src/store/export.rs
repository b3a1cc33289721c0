//! Exports read the usages a query selects in pages along the id index (keyset: each page
//! starts after the last id of the one before), so a whole table streams out in flat memory
//! and no page repeats or skips a row, whatever is written meanwhile.

use super::resource::Rendered;
use super::tenant::TenantStore;
use super::Table;
use crate::error::Error;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

impl TenantStore {
    /// Up to `limit` of the tenant's rows matching `filter` with ids after `after`, in id order, rendered with
    /// `href_prefix`; fewer when their documents pass `max_bytes` (at least one).
    pub async fn export_page<T: Table>(
        &self,
        filter: Condition,
        after: Option<String>,
        limit: u64,
        href_prefix: &str,
        max_bytes: usize,
    ) -> Result<Vec<Rendered>, Error> {
        self.store
            .pool()
            .run(|db| async move {
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
            })
            .await
    }
}
