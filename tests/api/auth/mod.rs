//! Authentication, scopes and signed callbacks (issue #26), on both backends: every operation
//! of `api/` without credentials (401) and with a wrong scope (403); refused tokens; JWKS from a
//! file and from a loopback server that rotates its keys; API keys through the real binary's
//! `apikey` subcommands; callback signatures checked with Python's `hmac`.

pub mod api_keys;
mod callbacks;
mod jwks;
mod operations;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub const HS256_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "tmf635-test";
pub const ALL_SCOPES: &str = "usage.read usage.write usageSpecification.read \
     usageSpecification.write hub.manage listener.write";

/// A file under `tests/api/auth/keys/`.
pub fn key_file(name: &str) -> String {
    format!("{}/tests/api/auth/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// Valid claims for the configured issuer and audience, with `scope`.
pub fn claims(scope: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "tester", "exp": now() + 300, "scope": scope})
}

pub fn hs256(claims: &Value) -> String {
    sign(
        claims,
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(HS256_SECRET.as_bytes()),
    )
}

pub fn sign(claims: &Value, header: Header, key: &EncodingKey) -> String {
    encode(&header, claims, key).expect("the token encodes")
}

/// A token signed with the PEM key `file` (RS256 or ES256) under `kid`.
pub fn signed_with(file: &str, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(key_file(file)).expect("the test key is there");
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .expect("the test key parses");
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    sign(claims, header, &key)
}

/// Server settings with HS256, issuer and audience.
pub fn hs256_config(config: &mut tmf635::Config) {
    config.auth_hs256_secret = Some(HS256_SECRET.parse().expect("a secret"));
    config.auth_issuer = Some(ISSUER.into());
    config.auth_audience = Some(AUDIENCE.into());
}

/// Every operation of `api/` as (method, path under the base path with ids filled in, scope).
pub fn operations() -> Vec<(reqwest::Method, String, String)> {
    let text = std::fs::read_to_string(format!(
        "{}/api/tmf635.openapi.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("api/ is readable");
    let document: Value = serde_json::from_str(&text).expect("api/ is JSON");
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let method = method.to_ascii_uppercase().parse().expect("a method");
            let scope = operation["x-tmf635-scope"].as_str().expect("a scope");
            found.push((method, path.replace("{id}", "some-id"), scope.to_string()));
        }
    }
    assert!(found.len() >= 24, "{} operations", found.len());
    found
}
