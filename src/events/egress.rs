//! The callback egress policy: which addresses a subscriber's callback may make this server
//! connect to. It is checked on the address actually connected to: names are resolved by
//! [`PolicyResolver`] (the callback client's DNS resolver), which drops refused addresses, so
//! a name that resolves (or re-resolves, DNS rebinding) to a refused address gets nowhere;
//! literal addresses, which the client does not resolve, are checked before every request and
//! every redirect hop.
//!
//! The rules, first match wins:
//! 1. an address in `TMF635_CALLBACK_DENY_CIDRS` is refused;
//! 2. an address in `TMF635_CALLBACK_ALLOW_CIDRS` is allowed;
//! 3. the default refusals: loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
//!    fe80::/10), unspecified (0.0.0.0/8, ::), multicast (224.0.0.0/4, ff00::/8) and broadcast
//!    (255.255.255.255);
//! 4. anything else (the private ranges included: subscribers in the same cluster are the
//!    common case) is allowed.
//!
//! An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is judged as the IPv4 address it maps.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A comma-separated list of CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`,
/// `::1`, taken as /32 or /128), as the settings take it; empty entries are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cidrs(pub Vec<IpNet>);

impl std::str::FromStr for Cidrs {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{entry:?} is not a CIDR (like 10.0.0.0/8 or fd00::/8) nor an IP address")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Cidrs)
    }
}

/// The allow and deny lists; the default refusals are built in.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One of the default refusals: `loopback`, `link-local`, `unspecified`, `multicast` or
    /// `broadcast`.
    Default(&'static str),
    /// In `TMF635_CALLBACK_DENY_CIDRS`.
    Denied(IpNet),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Default(kind) => write!(f, "{kind}"),
            Refusal::Denied(net) => write!(f, "in TMF635_CALLBACK_DENY_CIDRS ({net})"),
        }
    }
}

impl Refusal {
    /// `a loopback address (127.0.0.1), which callbacks may not reach (...)`.
    pub fn explain(&self, ip: IpAddr) -> String {
        match self {
            Refusal::Default(kind) => format!(
                "a {kind} address ({ip}), which callbacks may not reach \
                 (TMF635_CALLBACK_ALLOW_CIDRS allows it)"
            ),
            Refusal::Denied(net) => format!(
                "{ip}, which callbacks may not reach (TMF635_CALLBACK_DENY_CIDRS refuses {net})"
            ),
        }
    }
}

impl EgressPolicy {
    pub fn new(allow: Cidrs, deny: Cidrs) -> Self {
        EgressPolicy {
            allow: allow.0,
            deny: deny.0,
        }
    }

    /// Whether callbacks may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let mapped = canonical(ip);
        let listed = |nets: &[IpNet]| {
            nets.iter()
                .find(|net| net.contains(&ip) || net.contains(&mapped))
                .copied()
        };
        if let Some(net) = listed(&self.deny) {
            return Err(Refusal::Denied(net));
        }
        if listed(&self.allow).is_some() {
            return Ok(());
        }
        match default_refusal(mapped) {
            Some(kind) => Err(Refusal::Default(kind)),
            None => Ok(()),
        }
    }

    /// Resolves `host` and keeps the addresses callbacks may reach: an error when it does not
    /// resolve or resolves only to refused addresses.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| EgressError::Unresolved {
                host: host.to_string(),
                source,
            })?
            .collect();
        if resolved.is_empty() {
            return Err(EgressError::Unresolved {
                host: host.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            });
        }
        let (allowed, refused): (Vec<_>, Vec<_>) = resolved
            .into_iter()
            .map(|addr| (addr, self.check(addr.ip())))
            .partition(|(_, verdict)| verdict.is_ok());
        if allowed.is_empty() {
            return Err(EgressError::Refused {
                host: host.to_string(),
                refused: refused
                    .into_iter()
                    .filter_map(|(addr, verdict)| Some((addr.ip(), verdict.err()?)))
                    .collect(),
            });
        }
        Ok(allowed.into_iter().map(|(addr, _)| addr).collect())
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address stands for; any other address as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The default refusal `ip` falls under, if any.
fn default_refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        // 0.0.0.0/8, "this network": 0.0.0.0 itself reaches the local host on Linux.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("unspecified"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("multicast"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast"),
        _ => None,
    }
}

/// A callback host the policy does not let through.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(
        "{host} resolves only to addresses callbacks may not reach: {}",
        list(refused)
    )]
    Refused {
        host: String,
        refused: Vec<(IpAddr, Refusal)>,
    },
    #[error("{host} does not resolve: {source}")]
    Unresolved {
        host: String,
        source: std::io::Error,
    },
    /// A literal address in the URL (or a redirect's).
    #[error("{}", .refusal.explain(*.ip))]
    Literal { ip: IpAddr, refusal: Refusal },
}

fn list(refused: &[(IpAddr, Refusal)]) -> String {
    let mut text: Vec<String> = refused
        .iter()
        .map(|(ip, refusal)| format!("{ip} ({refusal})"))
        .collect();
    text.dedup();
    let remedy = if refused
        .iter()
        .any(|(_, refusal)| matches!(refusal, Refusal::Default(_)))
    {
        "; TMF635_CALLBACK_ALLOW_CIDRS allows them"
    } else {
        ""
    };
    format!("{}{remedy}", text.join(", "))
}

/// The DNS resolver of the callback client: tokio's (the system's) resolution, without the
/// addresses the policy refuses.
pub struct PolicyResolver {
    pub policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: the client puts the URL's port (or the scheme's) in its place.
            let addrs = policy.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A callback URL as it may be shown (answers, logs): user, password, query and fragment
/// replaced by `***`, e.g. `http://***:***@host/path?***`. Something that is not a URL is
/// not shown at all.
pub fn redact(callback: &str) -> String {
    let Ok(mut url) = url::Url::parse(callback) else {
        return "(not a URL)".into();
    };
    if !url.username().is_empty() {
        let _ = url.set_username("***");
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        url.set_query(Some("***"));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("***"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn cidrs(s: &str) -> Cidrs {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_lists() {
        assert_eq!(cidrs(""), Cidrs(vec![]));
        assert_eq!(
            cidrs(" 10.0.0.0/8, ,::1,127.0.0.1 "),
            Cidrs(vec![net("10.0.0.0/8"), net("::1/128"), net("127.0.0.1/32")])
        );
        for bad in ["bogus", "10.0.0.0/33", "10.0.0/8", "127.0.0.1/8/8"] {
            let error = bad.parse::<Cidrs>().unwrap_err();
            assert!(error.contains("is not a CIDR"), "{bad}: {error}");
        }
    }

    #[test]
    fn default_refusals() {
        let policy = EgressPolicy::default();
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
        ] {
            assert_eq!(
                policy.check(ip(address)),
                Err(Refusal::Default(kind)),
                "{address}"
            );
        }
        for address in [
            "10.0.0.7",
            "172.16.1.1",
            "192.168.1.1",
            "fd00::1",
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "::ffff:10.0.0.7",
        ] {
            assert_eq!(policy.check(ip(address)), Ok(()), "{address}");
        }
    }

    #[test]
    fn allow_beats_the_defaults_and_deny_beats_allow() {
        let policy = EgressPolicy::new(
            cidrs("127.0.0.0/8,10.0.0.0/8"),
            cidrs("10.1.0.0/16,192.168.0.0/16"),
        );
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::1")), Err(Refusal::Default("loopback")));
        assert_eq!(policy.check(ip("10.2.0.1")), Ok(()));
        assert_eq!(
            policy.check(ip("10.1.2.3")),
            Err(Refusal::Denied(net("10.1.0.0/16")))
        );
        assert_eq!(
            policy.check(ip("::ffff:192.168.1.1")),
            Err(Refusal::Denied(net("192.168.0.0/16")))
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        // `localhost` is 127.0.0.1 (and often ::1).
        let refused = EgressPolicy::default().resolve("localhost", 80).await;
        assert!(
            matches!(&refused, Err(EgressError::Refused { refused, .. }) if !refused.is_empty()),
            "{refused:?}"
        );
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("127.0.0.1 (loopback)"), "{message}");
        assert!(message.contains("TMF635_CALLBACK_ALLOW_CIDRS"), "{message}");

        let v4_only = EgressPolicy::new(cidrs("127.0.0.1/32"), cidrs("::1/128"));
        let addrs = v4_only.resolve("localhost", 80).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip() == ip("127.0.0.1")), "{addrs:?}");

        let unresolved = EgressPolicy::default()
            .resolve("no-such-host.invalid", 80)
            .await;
        assert!(
            matches!(unresolved, Err(EgressError::Unresolved { .. })),
            "{unresolved:?}"
        );
    }

    #[test]
    fn redaction_hides_credentials_and_tokens() {
        assert_eq!(
            redact("http://user:secret@host:8080/path?token=abc#frag"),
            "http://***:***@host:8080/path?***#***"
        );
        assert_eq!(redact("https://user@host/p"), "https://***@host/p");
        assert_eq!(redact("https://host/p"), "https://host/p");
        assert_eq!(redact("not a url secret"), "(not a URL)");
    }
}
