//! The handlers of the operations in `api/`: they validate and map the request, call the store,
//! and build the response. No SQL here; the routing and the request/response types are
//! generated (`crate::generated::endpoints`).

mod bulk;
mod hub;
mod listener;
mod operations;
mod representation;
mod usage;
mod usage_specification;

pub use operations::new_document;

use crate::bulk::import::Imports;
use crate::config::Config;
use crate::error::Error;
use crate::events::callback::CallbackClient;
use crate::store::{Store, Tenant, TenantStore};
use poem::Request;
use std::sync::Arc;

/// The base path of every TMF635 operation.
pub const BASE_PATH: &str = "/tmf-api/usageManagement/v4";

pub struct Settings {
    pub public_url: Option<String>,
    pub trust_forwarded_headers: bool,
    pub default_limit: u64,
    pub max_limit: u64,
    pub enforce_usage_lifecycle: bool,
    pub max_body_bytes: usize,
    pub max_patch_operations: usize,
    pub max_page_bytes: usize,
    pub max_subscriptions: u64,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            public_url: config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string()),
            trust_forwarded_headers: config.trust_forwarded_headers,
            default_limit: config.default_limit,
            max_limit: config.max_limit.max(1),
            enforce_usage_lifecycle: config.enforce_usage_lifecycle,
            max_body_bytes: config.max_body_bytes,
            max_patch_operations: config.max_patch_operations,
            max_page_bytes: config.max_page_bytes,
            max_subscriptions: config.max_subscriptions,
        }
    }
}

/// What every handler works with. The generated `UsageManagementApi` calls one method of this
/// per operationId; the methods live in the file of their resource.
pub struct Handlers {
    store: Store,
    imports: Imports,
    callbacks: CallbackClient,
    settings: Arc<Settings>,
}

impl Handlers {
    /// The store as the request's tenant sees it: every read and write of a handler goes
    /// through it. The tenant was put on the request by `auth::authenticate`; a request
    /// without one is refused rather than given any tenant's rows.
    fn store_for(&self, request: &Request) -> Result<TenantStore, Error> {
        let tenant = request
            .extensions()
            .get::<Tenant>()
            .ok_or_else(|| Error::Forbidden("the request names no tenant".into()))?;
        Ok(self.store.for_tenant(tenant.clone()))
    }

    pub fn new(
        store: Store,
        imports: Imports,
        callbacks: CallbackClient,
        settings: Settings,
    ) -> Self {
        Handlers {
            store,
            imports,
            callbacks,
            settings: Arc::new(settings),
        }
    }
}
