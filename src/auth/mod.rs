//! Who may call which operation: a poem middleware in front of the API routes.
//!
//! A request for an operation of `api/` needs credentials carrying that operation's scope
//! (`scopes`): a bearer JWT (`jwt`, `jwks`) or an API key (`api_key`), sent as
//! `Authorization: Bearer ...` or `X-API-Key`. Missing or invalid credentials answer 401 with
//! `WWW-Authenticate`, a missing scope 403, both as TMF Errors. Everything outside the API
//! (Swagger UI, the spec) stays open.
//!
//! Authentication is on when a JWT verifier is configured (a JWKS or an HS256 secret) or an API
//! key was ever issued in the database, as seen at start.
//!
//! Tenancy is on when a tenant claim is configured (`TMF635_TENANT_CLAIM`) or an API key with a
//! tenant was issued, as seen at start: each request then carries the tenant its credentials
//! name (a `Tenant` in its extensions, which handlers bind the store to), and credentials
//! naming none are refused (403). Without it, every request is the implicit tenant's.

pub mod api_key;
pub mod jwks;
pub mod jwt;
pub mod listener;
pub mod scopes;

use crate::config::Config;
use crate::error::Error;
use crate::handlers::BASE_PATH;
use crate::store::{Store, Tenant};
use jsonwebtoken::DecodingKey;
use jwt::JwtVerifier;
use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::collections::BTreeSet;
use std::sync::Arc;

/// HS256 secrets shorter than this are refused at start: a short shared secret can be guessed.
const MIN_HS256_SECRET_BYTES: usize = 32;

/// The caller, as established by its credentials.
#[derive(Debug, Clone)]
pub struct Principal {
    pub scopes: BTreeSet<String>,
    /// The tenant the credentials name (the token's tenant claim, the key's tenant).
    pub tenant: Option<String>,
}

/// The authentication of the server; cloning shares it.
#[derive(Clone)]
pub struct Auth(Option<Arc<Verifiers>>);

struct Verifiers {
    /// None when only API keys are accepted.
    jwt: Option<JwtVerifier>,
    store: Store,
    tenancy: bool,
}

impl Auth {
    /// Authentication off: every request is let through.
    pub fn off() -> Auth {
        Auth(None)
    }

    /// Reads the settings (and the JWKS, once); on or off per the rule of the module.
    pub async fn start(config: &Config, store: &Store) -> Result<Auth, String> {
        let hs256 = match &config.auth_hs256_secret {
            Some(secret) if secret.expose().len() < MIN_HS256_SECRET_BYTES => {
                return Err(format!(
                    "TMF635_AUTH_HS256_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes"
                ))
            }
            Some(secret) => Some(DecodingKey::from_secret(secret.expose().as_bytes())),
            None => None,
        };
        let jwks = match &config.auth_jwks {
            Some(location) => {
                let jwks = jwks::Jwks::load(location).await?;
                jwks.refresh_periodically();
                Some(jwks)
            }
            None => None,
        };
        let jwt = (hs256.is_some() || jwks.is_some()).then(|| JwtVerifier {
            hs256,
            jwks,
            issuer: config.auth_issuer.clone(),
            audience: config.auth_audience.clone(),
            tenant_claim: config.tenant_claim.clone(),
        });
        let keys_issued = store.api_keys_issued().await.map_err(|e| e.to_string())?;
        let keys_with_tenant = store
            .api_keys_with_tenant()
            .await
            .map_err(|e| e.to_string())?;
        let tenancy = config.tenant_claim.is_some() || keys_with_tenant;
        if jwt.is_none() && !keys_issued {
            if tenancy {
                return Err(
                    "TMF635_TENANT_CLAIM needs authentication: set TMF635_AUTH_JWKS or \
                     TMF635_AUTH_HS256_SECRET, or issue API keys"
                        .into(),
                );
            }
            tracing::warn!(
                "AUTHENTICATION IS OFF: anyone who reaches this port can read, change and delete \
                 every usage and subscription. Set TMF635_AUTH_JWKS or TMF635_AUTH_HS256_SECRET, \
                 or issue an API key with `tmf635 apikey create`, and restart."
            );
            return Ok(Auth::off());
        }
        tracing::info!(
            jwt = jwt.is_some(),
            api_keys = keys_issued,
            tenancy,
            "authentication on: every API operation needs credentials with its scope"
        );
        Ok(Auth(Some(Arc::new(Verifiers {
            jwt,
            store: store.clone(),
            tenancy,
        }))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

/// The middleware: checks the credentials of every API operation before it runs.
pub async fn authenticate<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    auth: Auth,
) -> poem::Result<Response> {
    match &auth.0 {
        None => {
            request.extensions_mut().insert(Tenant::implicit());
        }
        Some(verifiers) => {
            let path = request.uri().path();
            let scope = path
                .strip_prefix(BASE_PATH)
                .and_then(|api_path| scopes::required(request.method(), api_path));
            if let Some(scope) = scope {
                let principal = verifiers.principal(&request).await?;
                if !principal.scopes.contains(scope) {
                    return Err(Error::Forbidden(format!(
                        "this operation needs the scope `{scope}`, which the credentials do not carry"
                    ))
                    .into());
                }
                let tenant = verifiers.tenant(&principal)?;
                request.extensions_mut().insert(tenant);
                request.extensions_mut().insert(principal);
            }
        }
    }
    endpoint
        .call(request)
        .await
        .map(IntoResponse::into_response)
}

impl Verifiers {
    /// The tenant whose rows the request may see.
    fn tenant(&self, principal: &Principal) -> Result<Tenant, Error> {
        match (self.tenancy, principal.tenant.as_deref()) {
            (false, None) => Ok(Tenant::implicit()),
            (false, Some(_)) => Err(Error::Forbidden(
                "the credentials name a tenant, and this server was started without tenancy; \
                 it turns on at its next start"
                    .into(),
            )),
            (true, name) => name.and_then(Tenant::named).ok_or_else(|| {
                Error::Forbidden(
                    "the credentials name no tenant, and this server has tenancy".into(),
                )
            }),
        }
    }

    async fn principal(&self, request: &Request) -> Result<Principal, Error> {
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .map(|value| {
                let value = value.to_str().unwrap_or_default().trim();
                match value.split_once(' ') {
                    Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                        Ok(token.trim())
                    }
                    _ => Err(Error::Unauthorized(
                        "Authorization must be `Bearer TOKEN`".into(),
                    )),
                }
            })
            .transpose()?;
        let api_key = headers
            .get("x-api-key")
            .map(|v| v.to_str().unwrap_or_default().trim());
        match (bearer, api_key) {
            (Some(token), _) if !token.starts_with(api_key::PREFIX) => self.jwt(token).await,
            (Some(key), _) | (None, Some(key)) => self.api_key(key).await,
            (None, None) => Err(Error::Unauthorized(
                "credentials required: `Authorization: Bearer TOKEN` or `X-API-Key: KEY`".into(),
            )),
        }
    }

    async fn jwt(&self, token: &str) -> Result<Principal, Error> {
        let jwt = self
            .jwt
            .as_ref()
            .ok_or_else(|| Error::Unauthorized("this server accepts API keys only".into()))?;
        let verified = jwt.verify(token).await.map_err(Error::Unauthorized)?;
        Ok(Principal {
            scopes: verified.scopes.into_iter().collect(),
            tenant: verified.tenant,
        })
    }

    async fn api_key(&self, key: &str) -> Result<Principal, Error> {
        let found = self.store.active_api_key(&api_key::hash(key)).await?;
        let key =
            found.ok_or_else(|| Error::Unauthorized("the API key is unknown or revoked".into()))?;
        Ok(Principal {
            scopes: key.scopes.split_whitespace().map(str::to_string).collect(),
            tenant: key.tenant,
        })
    }
}
