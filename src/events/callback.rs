//! Calling subscriber callbacks, which are untrusted: bounded time, bounded connections, no
//! redirects to other hosts, only a little of the answer read, and an optional host allow-list.

use crate::store::delivery::Attempt;
use std::time::{Duration, Instant};

/// How much of a callback's answer is read before the connection is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct CallbackClient {
    client: reqwest::Client,
    allowed_hosts: Vec<String>,
}

impl CallbackClient {
    pub fn new(timeout: Duration, allowed_hosts: Vec<String>) -> Result<Self, String> {
        // Only 307/308 keep the method and body; following a 301/302/303 would turn the POST
        // into a bodiless GET and lose the event. And never to another host.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .first()
                .is_some_and(|first| first.host_str() == attempt.url().host_str());
            let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
            if same_host && keeps_body && attempt.previous().len() <= 3 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(redirects)
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
        })
    }

    /// Whether a callback URL may be registered and called: http(s), a host, and (with an
    /// allow-list) a listed host.
    pub fn check(&self, callback: &str) -> Result<(), String> {
        let url =
            url::Url::parse(callback).map_err(|e| format!("{callback:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{callback:?} must be an http or https URL"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{callback:?} has no host"))?
            .to_ascii_lowercase();
        if !self.allowed_hosts.is_empty() && !self.allowed_hosts.contains(&host) {
            return Err(format!(
                "callbacks to {host} are not allowed on this server"
            ));
        }
        Ok(())
    }

    /// POSTs one event to the subscriber's listener for its type, as TMF APIs v4 do:
    /// `{callback}/listener/usageCreateEvent`, the event's JSON text as the body. Any 2xx is a
    /// success.
    pub async fn deliver(&self, callback: &str, event_type: &str, event: String) -> Attempt {
        let started = Instant::now();
        let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
        if let Err(error) = self.check(callback) {
            return Attempt {
                http_status: None,
                error: Some(error),
                duration_ms: 0,
            };
        }
        let url = match listener_url(callback, event_type) {
            Ok(url) => url,
            Err(error) => {
                return Attempt {
                    http_status: None,
                    error: Some(error),
                    duration_ms: 0,
                }
            }
        };
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event);
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
                    error: None,
                    duration_ms: elapsed(started),
                }
            }
            Err(e) => Attempt {
                http_status: None,
                error: Some(format!("{e}")),
                duration_ms: elapsed(started),
            },
        }
    }
}

/// `{callback}/listener/{eventType with a lower-case first letter}`, joined to the callback's
/// path with its query string kept.
fn listener_url(callback: &str, event_type: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(callback).map_err(|e| format!("{callback:?}: {e}"))?;
    let mut listener = event_type.to_string();
    if let Some(first) = listener.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    url.path_segments_mut()
        .map_err(|_| format!("{callback:?} cannot take a path"))?
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
