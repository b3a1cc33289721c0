//! Tenant isolation, on both backends, with authentication on and tenancy on: tenants `a` and
//! `b` call with HS256 tokens carrying the tenant claim, and an API key issued for tenant `b`
//! (through the real binary) sees what `b`'s tokens see. For every endpoint, `b` gets answers
//! as if `a`'s rows did not exist, and credentials naming no tenant are refused.

mod credentials;
mod events;
mod jobs;
mod resources;

use crate::auth::api_keys::apikey;
use crate::auth::{claims, hs256, hs256_config, ALL_SCOPES};
use crate::helpers::{Api, Backend, TestApp};
use std::sync::{Arc, Mutex};

/// The claim that names the tenant in these tests' tokens.
pub const TENANT_CLAIM: &str = "org";

/// The running server and the credentials of its callers.
pub struct Tenants {
    pub app: TestApp,
    /// Tenant `a`, by token.
    pub a: Api,
    /// Tenant `b`, by token.
    pub b: Api,
    /// Tenant `b`, by API key.
    pub b_key: Api,
    /// An API key issued without a tenant.
    pub key_without_tenant: String,
}

/// A token of `tenant` with every scope.
pub fn token_of(tenant: &str) -> String {
    let mut claims = claims(ALL_SCOPES);
    claims[TENANT_CLAIM] = tenant.into();
    hs256(&claims)
}

/// Issues a key with every scope (and `tenant` when given) through the binary; answers it.
fn issue_key(database_url: &str, tenant: Option<&str>) -> String {
    let mut args = vec!["create", "--name", "tenancy", "--scope", ALL_SCOPES];
    if let Some(tenant) = tenant {
        args.extend(["--tenant", tenant]);
    }
    apikey(database_url, &args).trim().to_string()
}

impl Tenants {
    /// A server with HS256 tokens, the tenant claim, and the two API keys.
    pub async fn spawn(backend: Backend) -> Option<Tenants> {
        let keys = Arc::new(Mutex::new((String::new(), String::new())));
        let written = keys.clone();
        let app = TestApp::spawn_prepared(
            backend,
            |config| {
                hs256_config(config);
                config.tenant_claim = Some(TENANT_CLAIM.into());
            },
            |url| async move {
                let with = issue_key(&url, Some("b"));
                let without = issue_key(&url, None);
                *written.lock().expect("the keys") = (with, without);
            },
        )
        .await?;
        let (b_key, key_without_tenant) = keys.lock().expect("the keys").clone();
        let bearer = |token: String| format!("Bearer {token}");
        Some(Tenants {
            a: app.with_header("authorization", &bearer(token_of("a"))),
            b: app.with_header("authorization", &bearer(token_of("b"))),
            b_key: app.with_header("x-api-key", &b_key),
            key_without_tenant,
            app,
        })
    }
}

/// Defines each test on both backends, with `t: Tenants`.
#[macro_export]
macro_rules! tenancy_tests {
    ($(async fn $name:ident($t:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($t) = $crate::tenancy::Tenants::spawn($crate::helpers::Backend::Sqlite).await else { return };
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($t) = $crate::tenancy::Tenants::spawn($crate::helpers::Backend::Postgres).await else { return };
                    $body
                }
            )*
        }
    };
}
