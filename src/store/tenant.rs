//! The tenant-bound store: the only way to the rows of a tenant.
//!
//! Every query and write of a tenant's data (resources, subscriptions and their deliveries,
//! received events, bulk jobs) is a method of `TenantStore`, never of `Store`, and each adds
//! the tenant's condition to what it reads and sets the tenant on what it inserts. A handler
//! gets one from the request's tenant (`handlers::Handlers::store_for`), so it cannot reach
//! another tenant's rows, nor forget the condition. What runs across tenants (dispatching
//! events, leasing deliveries, retention, the import sweeper) stays on `Store`, and carries
//! each row's tenant over to the rows it makes from it.

use super::Store;
use sea_orm::DatabaseBackend;
use std::fmt;

/// A tenant's name, as the credentials give it. Without tenancy every row belongs to the one
/// implicit tenant, the empty string; with it, no credentials name that one (`named` refuses
/// the empty name), so rows stored before tenancy was turned on stay out of every tenant's
/// sight.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// The tenant of a server without tenancy.
    pub fn implicit() -> Tenant {
        Tenant(String::new())
    }

    /// A tenant named by credentials; None for an empty name.
    pub fn named(name: &str) -> Option<Tenant> {
        (!name.is_empty()).then(|| Tenant(name.to_string()))
    }

    /// The tenant a stored row names (its `tenant` column).
    pub(crate) fn of_row(name: &str) -> Tenant {
        Tenant(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({:?})", self.0)
    }
}

/// The store seen by one tenant (see the module).
#[derive(Clone)]
pub struct TenantStore {
    pub(super) store: Store,
    pub(super) tenant: Tenant,
}

impl Store {
    /// The store as `tenant` sees it.
    pub fn for_tenant(&self, tenant: Tenant) -> TenantStore {
        TenantStore {
            store: self.clone(),
            tenant,
        }
    }
}

impl TenantStore {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.store.backend()
    }

    /// The tenant's name as stored in its rows' `tenant` column.
    pub(super) fn name(&self) -> String {
        self.tenant.0.clone()
    }
}
