//! Calling subscriber callbacks, which are untrusted: bounded time, bounded connections, the
//! egress policy on every address connected to (`egress`), redirects only to the same scheme,
//! host and port, only a little of the answer read, and an optional host allow-list. What
//! went wrong is recorded as a kind of failure (`timeout`, `connection refused`, ...), never
//! as the network error's text; the full error goes to the log, the URL redacted.

use super::egress::{redact, EgressError, EgressPolicy, PolicyResolver};
use crate::store::delivery::Attempt;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a callback's answer is read before the connection is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Redirects followed at most per delivery.
const MAX_REDIRECTS: usize = 3;
/// How long a registration waits for its callback's host name to resolve.
const REGISTRATION_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The kind of failure of a delivery refused by the egress policy.
pub const REFUSED_BY_EGRESS_POLICY: &str = "refused by egress policy";

#[derive(Clone)]
pub struct CallbackClient {
    client: reqwest::Client,
    allowed_hosts: Vec<String>,
    policy: Arc<EgressPolicy>,
}

/// A callback this server will not call, with the kind of refusal (what a delivery attempt
/// records) and a message for the client that registers it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub kind: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CallbackClient {
    pub fn new(
        timeout: Duration,
        allowed_hosts: Vec<String>,
        policy: EgressPolicy,
    ) -> Result<Self, String> {
        let policy = Arc::new(policy);
        let hops = policy.clone();
        // Only 307/308 keep the method and body; following a 301/302/303 would turn the POST
        // into a bodiless GET and lose the event. And never to another scheme, host or port
        // (another service of the same host). A redirect not followed is answered as the 3xx.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| {
                let next = attempt.url();
                first.scheme() == next.scheme()
                    && first.host() == next.host()
                    && first.port_or_known_default() == next.port_or_known_default()
            });
            let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
            if !(same_origin && keeps_body && attempt.previous().len() <= MAX_REDIRECTS) {
                return attempt.stop();
            }
            match literal_address(&hops, attempt.url()) {
                Err(refused) => attempt.error(refused),
                Ok(()) => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(redirects)
            // Every name is resolved through the policy: only allowed addresses are connected to.
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            // Never through HTTP_PROXY / HTTPS_PROXY / ALL_PROXY: the proxy would resolve and
            // connect to the callback's host itself, out of the policy's reach.
            .no_proxy()
            .pool_max_idle_per_host(4)
            .user_agent(concat!("tmf635/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(CallbackClient {
            client,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            policy,
        })
    }

    /// Whether a callback URL may be called: http(s), a host, (with an allow-list) a listed
    /// host, and when the host is an address, one the egress policy allows. Messages show the
    /// URL redacted.
    pub fn check(&self, callback: &str) -> Result<url::Url, Refused> {
        let invalid = |message: String| Refused {
            kind: "invalid callback",
            message,
        };
        let url = url::Url::parse(callback).map_err(|e| invalid(format!("not a URL: {e}")))?;
        let shown = redact(callback);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("{shown} must be an http or https URL")));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid(format!("{shown} has no host")))?
            .to_ascii_lowercase();
        if !self.allowed_hosts.is_empty() && !self.allowed_hosts.contains(&host) {
            return Err(Refused {
                kind: "host not allowed",
                message: format!("callbacks to {host} are not allowed on this server"),
            });
        }
        literal_address(&self.policy, &url).map_err(|e| Refused {
            kind: REFUSED_BY_EGRESS_POLICY,
            message: format!("{shown} points at {e}"),
        })?;
        Ok(url)
    }

    /// `check`, and for a host name, that it does not resolve only to refused addresses. A
    /// name that does not resolve (yet), or not within 2 s, is accepted: every delivery
    /// resolves it again and connects only to allowed addresses.
    pub async fn check_registration(&self, callback: &str) -> Result<(), Refused> {
        let url = self.check(callback)?;
        if let Some(url::Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(80);
            let resolved = tokio::time::timeout(
                REGISTRATION_RESOLVE_TIMEOUT,
                self.policy.resolve(name, port),
            )
            .await;
            if let Ok(Err(refused @ EgressError::Refused { .. })) = resolved {
                return Err(Refused {
                    kind: REFUSED_BY_EGRESS_POLICY,
                    message: format!("{}: {refused}", redact(callback)),
                });
            }
        }
        Ok(())
    }

    /// POSTs one event to the subscriber's listener for its type, as TMF APIs v4 do:
    /// `{callback}/listener/usageCreateEvent`, the event's JSON text as the body. Any 2xx is a
    /// success. With `signing` (the subscription's secret and the event id) the post carries
    /// the Standard Webhooks headers (`signature`).
    pub async fn deliver(
        &self,
        callback: &str,
        event_type: &str,
        event: String,
        signing: Option<(&str, &str)>,
    ) -> Attempt {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
        let url = match self
            .check(callback)
            .and_then(|_| listener_url(callback, event_type))
        {
            Ok(url) => url,
            Err(refused) => {
                return Attempt {
                    http_status: None,
                    error: Some(refused.kind.into()),
                    detail: Some(refused.message),
                    duration_ms: 0,
                }
            }
        };
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some((secret, id)) = signing {
            let now = chrono::Utc::now().timestamp();
            match super::signature::headers(secret, id, now, event.as_bytes()) {
                Ok(headers) => {
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                }
                Err(e) => {
                    return Attempt {
                        http_status: None,
                        error: Some("signing failed".into()),
                        detail: Some(e),
                        duration_ms: 0,
                    }
                }
            }
        }
        let request = request.body(event);
        match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read (and drop) at most a little of the answer, so the connection can be
                // reused without letting a callback stream at us.
                let mut read = 0;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Attempt {
                    http_status: Some(status),
                    error: (300..400)
                        .contains(&status)
                        .then(|| format!("redirect not followed (HTTP {status})")),
                    detail: None,
                    duration_ms: elapsed(started),
                }
            }
            Err(e) => {
                // Without the URL: it may carry credentials.
                let e = e.without_url();
                Attempt {
                    http_status: None,
                    error: Some(failure_kind(&e).into()),
                    detail: Some(error_chain(&e)),
                    duration_ms: elapsed(started),
                }
            }
        }
    }
}

/// The refusal of the address in `url`, when its host is one (the client resolves only names,
/// through the policy).
fn literal_address(policy: &EgressPolicy, url: &url::Url) -> Result<(), EgressError> {
    let ip: IpAddr = match url.host() {
        Some(url::Host::Ipv4(v4)) => v4.into(),
        Some(url::Host::Ipv6(v6)) => v6.into(),
        _ => return Ok(()),
    };
    policy
        .check(ip)
        .map_err(|refusal| EgressError::Literal { ip, refusal })
}

/// The errors of `error` and its sources, for the log.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What kind of failure a request error was, in words that reveal nothing of the network
/// behind the callback.
fn failure_kind(error: &reqwest::Error) -> &'static str {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = next {
        if let Some(egress) = cause.downcast_ref::<EgressError>() {
            return match egress {
                EgressError::Unresolved { .. } => "DNS failure",
                _ => REFUSED_BY_EGRESS_POLICY,
            };
        }
        if cause.is::<rustls::Error>() {
            return "TLS error";
        }
        next = cause.source();
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused",
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    return "connection closed"
                }
                TimedOut => return "timeout",
                NetworkUnreachable | HostUnreachable => return "unreachable",
                _ => {}
            }
            // An io::Error's `source` skips the error it wraps: go into that one.
            if let Some(wrapped) = io.get_ref() {
                next = Some(wrapped);
            }
        }
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_redirect() {
        "redirect not followed"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// `{callback}/listener/{eventType with a lower-case first letter}`, joined to the callback's
/// path with its query string kept.
fn listener_url(callback: &str, event_type: &str) -> Result<url::Url, Refused> {
    let invalid = |message: String| Refused {
        kind: "invalid callback",
        message,
    };
    let mut url = url::Url::parse(callback).map_err(|e| invalid(format!("not a URL: {e}")))?;
    let mut listener = event_type.to_string();
    if let Some(first) = listener.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    url.path_segments_mut()
        .map_err(|_| invalid(format!("{} cannot take a path", redact(callback))))?
        .pop_if_empty()
        .push("listener")
        .push(&listener);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::listener_url;

    #[test]
    fn listener_path_joins_the_callback_path_and_keeps_its_query() {
        let url = |c| listener_url(c, "UsageCreateEvent").unwrap().to_string();
        assert_eq!(
            url("http://h/hook"),
            "http://h/hook/listener/usageCreateEvent"
        );
        assert_eq!(
            url("http://h/hook/"),
            "http://h/hook/listener/usageCreateEvent"
        );
        assert_eq!(
            url("http://h/hook?token=abc"),
            "http://h/hook/listener/usageCreateEvent?token=abc"
        );
    }
}
