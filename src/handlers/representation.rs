//! How stored documents become response bodies: `href` for the request's base URL, `fields`
//! selection, and paging parameters.

use super::{Settings, BASE_PATH};
use crate::error::Error;
use crate::model::scalar::Integer;
use crate::resource_kind::ResourceKind;
use poem::Request;
use serde_json::{Map, Value};

/// The absolute URL under which this server's resources are reached, as the client sees it:
/// the configured public URL; else, behind a proxy the settings say sets them,
/// `X-Forwarded-Proto` and `X-Forwarded-Host`; else the scheme and Host of the request.
/// Forwarded headers from anyone else are ignored: they would decide every stored and
/// announced `href`.
pub fn base_url(settings: &Settings, request: &Request) -> String {
    if let Some(url) = &settings.public_url {
        return format!("{url}{BASE_PATH}");
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let forwarded = |name: &str| {
        settings
            .trust_forwarded_headers
            .then(|| header(name))
            .flatten()
            // A proxy chain lists one value per hop; the first is what the client asked for.
            .and_then(|v| v.split(',').next().map(|v| v.trim().to_string()))
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .or_else(|| header("host"))
        .filter(|h| valid_host(h))
        .unwrap_or_else(|| "localhost".to_string());
    let scheme = match forwarded("x-forwarded-proto").as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ => request.uri().scheme_str().unwrap_or("http"),
    };
    format!("{scheme}://{host}{BASE_PATH}")
}

/// Whether `host` is a `host[:port]` and nothing else, so a forged Host cannot inject into
/// hrefs: a name or an address of at most 255 characters, and a port that is a number.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

pub fn href(settings: &Settings, request: &Request, kind: ResourceKind, id: &str) -> String {
    format!("{}{id}", href_prefix(settings, request, kind))
}

/// What a resource's `href` is before its id: `.../tmf-api/usageManagement/v4/usage/`.
pub fn href_prefix(settings: &Settings, request: &Request, kind: ResourceKind) -> String {
    format!("{}/{}/", base_url(settings, request), kind.name())
}

/// The response body of a stored resource: `id` and `href` first (href for this request),
/// then the other attributes.
pub fn resource_body(document: &Map<String, Value>, id: &str, href: String) -> Map<String, Value> {
    let mut body = Map::with_capacity(document.len() + 2);
    body.insert("id".into(), Value::String(id.to_string()));
    body.insert("href".into(), Value::String(href));
    for (key, value) in document {
        if key != "id" && key != "href" {
            body.insert(key.clone(), value.clone());
        }
    }
    body
}

/// The RFC 8288 `Link` header of a list page: first, prev, next and last, each the request's
/// own URL (filter and sort kept) with its offset and limit changed; `next` starts after the
/// `count` items this page holds.
pub fn link_header(
    settings: &Settings,
    request: &Request,
    offset: u64,
    limit: u64,
    count: u64,
    total: u64,
) -> Option<String> {
    if limit == 0 {
        return None;
    }
    let path = request.original_uri().path();
    let url = format!(
        "{}{}",
        base_url(settings, request),
        path.strip_prefix(BASE_PATH).unwrap_or(path)
    );
    let kept: Vec<&str> = request
        .original_uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !p.is_empty() && name != "offset" && name != "limit"
        })
        .collect();
    let page = |offset: u64, rel: &str| {
        let mut query = kept.clone();
        let paging = format!("offset={offset}&limit={limit}");
        query.push(&paging);
        format!("<{url}?{}>; rel=\"{rel}\"", query.join("&"))
    };
    let last = total.saturating_sub(1) / limit * limit;
    let mut links = vec![page(0, "first")];
    if offset > 0 {
        links.push(page(offset.saturating_sub(limit).min(last), "prev"));
    }
    if offset + count < total {
        links.push(page(offset + count, "next"));
    }
    links.push(page(last, "last"));
    Some(links.join(", "))
}

/// `offset` and `limit` checked (no negatives) and capped to the configured maximum.
pub fn paging(
    settings: &Settings,
    offset: Option<Integer>,
    limit: Option<Integer>,
) -> Result<(u64, u64), Error> {
    let offset = at_least_zero("offset", offset)?.unwrap_or(0);
    let limit = at_least_zero("limit", limit)?.unwrap_or(settings.default_limit);
    Ok((offset, limit.min(settings.max_limit)))
}

/// An `offset` or `limit` as a count (400 when negative), with no page-size bound.
pub fn at_least_zero(name: &str, value: Option<Integer>) -> Result<Option<u64>, Error> {
    value
        .map(|Integer(n)| {
            u64::try_from(n)
                .map_err(|_| Error::BadRequest(format!("{name} must be 0 or more, not {n}")))
        })
        .transpose()
}
