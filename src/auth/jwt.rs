//! Bearer JWTs: the signature (HS256 with the shared secret, RS256/ES256 with the key set), then
//! `exp` (required) and `nbf` with a small leeway, the issuer and the audience when configured.
//! Tokens of any other algorithm, `none` included, are refused.

use super::jwks::Jwks;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::sync::Arc;

/// Clock difference tolerated between the token's issuer and this server, in seconds.
pub const LEEWAY_SECS: u64 = 30;

pub struct JwtVerifier {
    pub hs256: Option<DecodingKey>,
    pub jwks: Option<Arc<Jwks>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The claim naming the caller's tenant, when tenancy is configured.
    pub tenant_claim: Option<String>,
}

/// What a valid token says of its bearer.
pub struct Verified {
    pub scopes: Vec<String>,
    /// The tenant claim's value, when configured and a string.
    pub tenant: Option<String>,
}

/// The claims read beyond the registered ones jsonwebtoken checks.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Scp>,
    /// The rest, where the tenant claim is looked up (its name is a setting).
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// `scp` is an array in most providers, a space-separated string in some.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scp {
    List(Vec<String>),
    Text(String),
}

impl JwtVerifier {
    /// The token's scopes and tenant when it checks out, else why not (safe to tell the
    /// client).
    pub async fn verify(&self, token: &str) -> Result<Verified, String> {
        let header = decode_header(token)
            .map_err(|_| "the token is malformed or uses an algorithm not accepted".to_string())?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .clone()
                .ok_or("HS256 tokens are not accepted here")?,
            Algorithm::RS256 | Algorithm::ES256 => {
                let jwks = self
                    .jwks
                    .as_ref()
                    .ok_or("RS256 and ES256 tokens are not accepted here")?;
                jwks.key(header.kid.as_deref(), header.alg).await?
            }
            _ => return Err("the token's algorithm is not accepted".into()),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = decode::<Claims>(token, &key, &validation).map_err(|e| describe(e.kind()))?;
        let mut scopes: Vec<String> = data
            .claims
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_string))
            .collect();
        match data.claims.scp {
            Some(Scp::List(list)) => scopes.extend(list),
            Some(Scp::Text(text)) => scopes.extend(text.split_whitespace().map(str::to_string)),
            None => {}
        }
        let tenant = self.tenant_claim.as_ref().and_then(|claim| {
            let value = data.claims.other.get(claim)?;
            value.as_str().map(str::to_string)
        });
        Ok(Verified { scopes, tenant })
    }
}

/// What the client is told about a refused token.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted".into(),
        ErrorKind::InvalidAudience => "the token's audience is not accepted".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        _ => "the token is not valid".into(),
    }
}
