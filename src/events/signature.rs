//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), so listeners verify
//! callbacks with existing libraries: `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the
//! base64-decoded part of a `whsec_...` secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";
/// How far a signed post's timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A new `whsec_` secret of 32 random bytes.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

fn mac(secret: &str) -> Result<Hmac<Sha256>, String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| "the webhook secret is not base64".to_string())?;
    Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "unusable webhook secret".to_string())
}

/// The three headers of a callback, for `body` sent now under `id`.
pub fn headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], String> {
    let mut mac = mac(secret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    Ok([
        (ID, id.to_string()),
        (TIMESTAMP, timestamp.to_string()),
        (SIGNATURE, format!("v1,{signature}")),
    ])
}

/// Checks a received post: its timestamp within [`TOLERANCE_SECS`] of `now` and one of the
/// space-separated `v1,` signatures valid (compared in constant time by `hmac`).
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err(format!(
            "the post must be signed ({ID}, {TIMESTAMP}, {SIGNATURE})"
        ));
    };
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("{TIMESTAMP} is not a number of seconds"))?;
    if (now - sent).abs() > TOLERANCE_SECS {
        return Err(format!("{TIMESTAMP} is more than five minutes from now"));
    }
    let mut expected = mac(secret)?;
    expected.update(format!("{id}.{timestamp}.").as_bytes());
    expected.update(body);
    let valid = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|signature| expected.clone().verify_slice(&signature).is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!("{SIGNATURE} does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference implementations' test suites.
    #[test]
    fn matches_the_reference_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let [_, _, (_, signature)] =
            headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let id = Some("msg_p5jXN8AQM9LWM0D4loKWxJek");
        let ts = Some("1614265330");
        assert!(verify(secret, id, ts, Some(&signature), body, 1614265330 + 10).is_ok());
        assert!(verify(secret, id, ts, Some(&signature), body, 1614265330 + 301).is_err());
        assert!(verify(secret, id, ts, Some("v1,AAAA"), body, 1614265330).is_err());
        assert!(verify(secret, id, ts, Some(&signature), b"{}", 1614265330).is_err());
        assert!(verify(secret, None, ts, Some(&signature), body, 1614265330).is_err());
    }
}
