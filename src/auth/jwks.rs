//! The JSON Web Key Set RS256 and ES256 tokens are checked against: read from a file or fetched
//! over http(s) at start, refreshed periodically, and again when a token names a key the set
//! does not have (the identity provider rotated its keys), at most once per [`MIN_REFETCH`].

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// Largest key set read; real ones are a few KiB.
const MAX_BYTES: usize = 1024 * 1024;
/// Time limit of one fetch of the set.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the set is fetched again in any case.
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// An unknown `kid` fetches the set again only this long after the last fetch, so tokens
/// naming made-up keys cannot make the server hammer the identity provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(1);

enum Source {
    File(PathBuf),
    Url(reqwest::Client, url::Url),
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

pub struct Jwks {
    source: Source,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the set was last fetched; held while fetching, so concurrent misses fetch once.
    fetched: Mutex<Instant>,
}

impl Jwks {
    /// Reads the set from `location` (an http(s) URL or a file path); an error when it cannot
    /// be read or holds no usable key.
    pub async fn load(location: &str) -> Result<Arc<Jwks>, String> {
        let source = match url::Url::parse(location) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::limited(3))
                    .build()
                    .map_err(|e| format!("JWKS client: {e}"))?;
                Source::Url(client, url)
            }
            _ => Source::File(PathBuf::from(location)),
        };
        let keys = read(&source).await?;
        Ok(Arc::new(Jwks {
            source,
            keys: RwLock::new(Arc::new(keys)),
            fetched: Mutex::new(Instant::now()),
        }))
    }

    /// The key for a token's `kid` and `alg`; a token without `kid` needs a set with a single
    /// key of its algorithm.
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, String> {
        if let Some(key) = self.find(kid, alg).await {
            return Ok(key);
        }
        if kid.is_some() {
            let mut fetched = self.fetched.lock().await;
            if fetched.elapsed() >= MIN_REFETCH {
                self.refresh_locked(&mut fetched).await;
            }
        }
        self.find(kid, alg)
            .await
            .ok_or_else(|| "the token's signing key is not in the key set".to_string())
    }

    async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read().await.clone();
        let mut matching = keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid));
        let first = matching.next()?;
        // Without a kid, more than one candidate is ambiguous: refuse rather than guess.
        (kid.is_some() || matching.next().is_none()).then(|| first.key.clone())
    }

    /// Fetches the set again now; a failure keeps the keys known so far.
    pub async fn refresh(&self) {
        let mut fetched = self.fetched.lock().await;
        self.refresh_locked(&mut fetched).await;
    }

    async fn refresh_locked(&self, fetched: &mut Instant) {
        *fetched = Instant::now();
        match read(&self.source).await {
            Ok(keys) => *self.keys.write().await = Arc::new(keys),
            Err(e) => tracing::warn!("JWKS refresh failed, keeping the known keys: {e}"),
        }
    }

    /// Refreshes every [`REFRESH_EVERY`] for as long as the server holds the set.
    pub fn refresh_periodically(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                match weak.upgrade() {
                    Some(jwks) => jwks.refresh().await,
                    None => return,
                }
            }
        });
    }
}

async fn read(source: &Source) -> Result<Vec<Key>, String> {
    let bytes = match source {
        Source::File(path) => read_file(path).await?,
        Source::Url(client, url) => fetch(client, url).await?,
    };
    let set: JwkSet =
        serde_json::from_slice(&bytes).map_err(|e| format!("JWKS is not a key set: {e}"))?;
    let keys: Vec<Key> = set.keys.iter().filter_map(usable).collect();
    if keys.is_empty() {
        return Err("JWKS holds no RS256 or ES256 signing key".into());
    }
    Ok(keys)
}

async fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("JWKS file {}: {e}", path.display()))?
        .len();
    if size > MAX_BYTES as u64 {
        return Err(format!(
            "JWKS file {} is over {MAX_BYTES} bytes",
            path.display()
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("JWKS file {}: {e}", path.display()))
}

async fn fetch(client: &reqwest::Client, url: &url::Url) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("JWKS fetch: {}", e.without_url()))?;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("JWKS fetch: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(format!("JWKS answer is over {MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A signing key of an algorithm this server accepts (RS256, ES256), else None.
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}
