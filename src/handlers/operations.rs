//! The operations both resources share (list, create, retrieve, patch, delete), written once
//! for any resource table; `usage.rs` and `usage_specification.rs` wrap them in their
//! generated response types.

use super::representation::{href, href_prefix, link_header, paging, resource_body};
use super::Handlers;
use crate::error::Error;
use crate::model::document::Document;
use crate::model::patch::Patch;
use crate::model::scalar::Integer;
use crate::model::validate;
use crate::query::{self, FieldSelection};
use crate::store::resource::{ListQuery, Rendered};
use crate::store::{StoredResource, Table, TenantStore};
use poem::Request;
use poem_openapi::types::ParseFromJSON;
use sea_orm::sea_query::{NullOrdering, Order, SimpleExpr};
use serde_json::{Map, Value};

/// Attributes the server owns: a body may not set them.
const SERVER_OWNED: &[&str] = &["id", "href"];

/// A new resource's document: its id and href, then the attributes of the checked body (an
/// import builds its rows with it too).
pub fn new_document<C>(id: String, href: String, body: Document<C>) -> Map<String, Value> {
    let mut document = Map::new();
    document.insert("id".into(), Value::String(id));
    document.insert("href".into(), Value::String(href));
    for (key, value) in body.into_json() {
        if !SERVER_OWNED.contains(&key.as_str()) {
            document.insert(key, value);
        }
    }
    document
}

/// A list's filter, compiled, and its order terms (empty: newest first).
pub(super) type ListFilter = (
    query::compile::Compiled,
    Vec<(SimpleExpr, Order, NullOrdering)>,
);

pub struct ListPage<M> {
    pub items: Vec<Document<M>>,
    pub total: Integer,
    pub count: Integer,
    pub link: Option<String>,
    /// The client asked for a page (offset or limit) and it holds less than all matches:
    /// 206 Partial Content. A plain list answers 200 with the first page (TM Forum's CTK
    /// expects 200 there, whatever the table holds).
    pub partial: bool,
}

/// The `sort` parameter, decoded (it is not one of the operation's declared parameters).
fn sort_param(raw_query: &str) -> Result<Option<String>, Error> {
    Ok(query::filter::pairs(raw_query)?
        .into_iter()
        .find(|(name, op, _)| name == "sort" && op.is_none())
        .map(|(_, _, value)| value))
}

pub(super) fn fields<T: Table>(fields: Option<&str>) -> Result<Option<FieldSelection>, Error> {
    fields
        .map(|f| FieldSelection::parse(T::KIND, f))
        .transpose()
}

impl Handlers {
    /// The body of a changed resource, with this request's `href`, and its ETag.
    fn versioned<T: Table, M>(&self, request: &Request, row: &StoredResource) -> Versioned<M> {
        let href = href(&self.settings, request, T::KIND, &row.id);
        Versioned {
            body: Document::from_json(resource_body(&row.document, &row.id, href)),
            etag: etag(row.revision),
        }
    }

    /// The body of a read: the database's text as it is, or parsed and cut down to `fields`.
    pub(super) fn rendered_body<M>(row: Rendered, fields: Option<&FieldSelection>) -> Document<M> {
        match fields {
            None => Document::rendered(row.json),
            Some(selection) => {
                let document = match serde_json::from_str(&row.json) {
                    Ok(Value::Object(document)) => document,
                    _ => Map::new(),
                };
                Document::from_json(selection.project(document))
            }
        }
    }

    /// A list's filter, compiled, and its order (empty: newest first), from the request's
    /// query string.
    pub(super) fn list_filter<T: Table>(
        &self,
        request: &Request,
        store: &TenantStore,
    ) -> Result<ListFilter, Error> {
        let raw_query = request.uri().query().unwrap_or("");
        let filter = query::filter::parse(raw_query, query::RESERVED)?;
        let sort = sort_param(raw_query)?
            .map(|s| query::sort::parse(T::KIND, &s))
            .transpose()?
            .unwrap_or_default();
        let compiled = query::compile::compile::<T>(&filter, &sort, store)?;
        let order = match sort.is_empty() {
            true => Vec::new(),
            false => query::sort::order_terms::<T>(&sort, store.backend()),
        };
        Ok((compiled, order))
    }

    pub(super) async fn list_resources<T, M>(
        &self,
        request: &Request,
        fields_param: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> Result<ListPage<M>, Error>
    where
        T: Table,
    {
        let selection = fields::<T>(fields_param.as_deref())?;
        let paged = offset.is_some() || limit.is_some();
        let (offset, limit) = paging(&self.settings, offset, limit)?;
        let store = self.store_for(request)?;
        let (compiled, order) = self.list_filter::<T>(request, &store)?;
        let list = ListQuery {
            filter: compiled.condition,
            order,
            walk: compiled.walk,
            index_count: compiled.index_count,
            index_scan: compiled.index_scan,
            max_bytes: self.settings.max_page_bytes,
        };
        let prefix = href_prefix(&self.settings, request, T::KIND);
        let page = store.list::<T>(list, offset, limit, &prefix).await?;
        let items: Vec<Document<M>> = page
            .items
            .into_iter()
            .map(|row| Self::rendered_body(row, selection.as_ref()))
            .collect();
        let count = items.len() as u64;
        // Fewer than the page could hold: the byte budget cut it short. It is answered as a
        // partial page whose `next` link starts where it stopped.
        let cut = count < limit.min(page.total.saturating_sub(offset));
        Ok(ListPage {
            link: link_header(&self.settings, request, offset, limit, count, page.total),
            partial: (paged || cut) && count < page.total,
            items,
            total: Integer(page.total as i64),
            count: Integer(count as i64),
        })
    }

    pub(super) async fn create_resource<T, M, C>(
        &self,
        request: &Request,
        body: Document<C>,
        complete: impl Fn(&mut Map<String, Value>),
    ) -> Result<Versioned<M>, Error>
    where
        T: Table,
        M: ParseFromJSON,
    {
        let id = crate::resource_kind::new_id();
        let href = href(&self.settings, request, T::KIND, &id);
        let mut document = new_document(id, href, body);
        // No second check against `M`: the body was checked against its `_Create` schema,
        // which is `M` without id and href (same attributes, same types), and what the server
        // adds (id, href, `complete`) is valid by construction.
        complete(&mut document);
        let row = self.store_for(request)?.create::<T>(document).await?;
        // The stored document starts with this request's id and href: it is the body as is.
        Ok(Versioned {
            etag: etag(row.revision),
            body: Document::rendered(row.json),
        })
    }

    pub(super) async fn retrieve_resource<T, M>(
        &self,
        request: &Request,
        id: &str,
        fields_param: Option<String>,
    ) -> Result<Versioned<M>, Error>
    where
        T: Table,
    {
        let selection = fields::<T>(fields_param.as_deref())?;
        let prefix = href_prefix(&self.settings, request, T::KIND);
        let row = self
            .store_for(request)?
            .find_rendered::<T>(id, &prefix)
            .await?;
        Ok(Versioned {
            etag: etag(row.revision),
            body: Self::rendered_body(row, selection.as_ref()),
        })
    }

    /// Applies a merge patch or JSON Patch; `check(before, after)` may refuse the change or
    /// complete it (e.g. move `lastUpdate`). The result must still be a valid resource, and
    /// `If-Match` must name the version the patch is applied to.
    pub(super) async fn patch_resource<T, M>(
        &self,
        request: &Request,
        id: &str,
        if_match: Option<String>,
        patch: Patch,
        check: impl Fn(&Map<String, Value>, &mut Map<String, Value>) -> Result<(), Error>,
    ) -> Result<Versioned<M>, Error>
    where
        T: Table,
        M: ParseFromJSON,
    {
        // A well-formed patch that would change what the server owns is 422 (RFC 5789 §2.2):
        // it is understood but cannot apply to this resource. A malformed patch is 400.
        if let Patch::Merge(merge) = &patch {
            if let Some(owned) = SERVER_OWNED.iter().find(|k| merge.contains_key(**k)) {
                return Err(Error::Unprocessable(format!(
                    "{owned} is set by the server and cannot be patched"
                )));
            }
        }
        let expected = if_match.as_deref().and_then(parse_if_match);
        let limits = PatchLimits {
            max_operations: self.settings.max_patch_operations,
            max_document_bytes: self.settings.max_body_bytes,
        };
        let row = self
            .store_for(request)?
            .update::<T, _>(id, expected.as_deref(), |current| {
                let changed = apply_patch(current, &patch, limits)?;
                for owned in SERVER_OWNED {
                    if changed.get(*owned) != current.get(*owned) {
                        return Err(Error::Unprocessable(format!(
                            "{owned} is set by the server and cannot be patched"
                        )));
                    }
                }
                // What the client wrote is checked before the server completes it (a
                // patched `lastUpdate` must be a date-time even though it is replaced).
                // A merge patch carries the values the schema refuses (400, as a body that
                // breaks its schema); a JSON Patch is understood but cannot apply here (422).
                let mut changed = checked::<M>(changed).map_err(|e| match (&patch, e) {
                    (Patch::Json(_), Error::BadRequest(message)) => Error::Unprocessable(message),
                    (_, e) => e,
                })?;
                check(current, &mut changed)?;
                Ok(changed)
            })
            .await?;
        Ok(self.versioned::<T, M>(request, &row))
    }

    pub(super) async fn delete_resource<T>(
        &self,
        request: &Request,
        id: &str,
        if_match: Option<String>,
    ) -> Result<(), Error>
    where
        T: Table,
    {
        let expected = if_match.as_deref().and_then(parse_if_match);
        self.store_for(request)?
            .delete::<T>(id, expected.as_deref())
            .await
    }
}

/// A resource body with its ETag.
pub struct Versioned<M> {
    pub body: Document<M>,
    pub etag: String,
}

/// The ETag of a revision: strong, as If-Match compares strongly.
fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The revisions an `If-Match` header accepts: None for `*` (any), else the listed strong
/// ETags (a weak or foreign tag matches nothing, so the write answers 412).
fn parse_if_match(header: &str) -> Option<Vec<i64>> {
    if header.trim() == "*" {
        return None;
    }
    Some(
        header
            .split(',')
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse().ok())
            })
            .collect(),
    )
}

/// JSON equality with numbers compared by value.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// What a PATCH may do to a document: how many JSON Patch operations it may hold, and how
/// large the document may grow (the body limit, so that what is stored could be sent back).
#[derive(Clone, Copy)]
pub(super) struct PatchLimits {
    pub max_operations: usize,
    pub max_document_bytes: usize,
}

fn apply_patch(
    current: &Map<String, Value>,
    patch: &Patch,
    limits: PatchLimits,
) -> Result<Map<String, Value>, Error> {
    // The bound is on what a client could send: the attributes the server owns (id, href)
    // come on top of it.
    let owned: usize = SERVER_OWNED
        .iter()
        .filter_map(|key| {
            current
                .get(*key)
                .map(|value| key.len() + value.to_string().len() + 4)
        })
        .sum();
    let bound = DocumentBound {
        limit: limits.max_document_bytes,
        bytes: limits.max_document_bytes + owned,
    };
    let mut document = Value::Object(current.clone());
    match patch {
        Patch::Merge(merge) => {
            json_patch::merge(&mut document, &Value::Object(merge.clone()));
            within_limits(&document, bound, "the merged resource")?;
        }
        // One operation at a time on a copy, so `test` can compare numbers by value (RFC 6902
        // §4.6: 20 equals 20.0), the document is bounded after each step (a few `copy`
        // operations can double it again and again), and a failure anywhere leaves the
        // resource untouched.
        Patch::Json(operations) => {
            if operations.0.len() > limits.max_operations {
                return Err(Error::BadRequest(format!(
                    "a JSON Patch may hold at most {} operations, not {}",
                    limits.max_operations,
                    operations.0.len()
                )));
            }
            for (i, operation) in operations.0.iter().enumerate() {
                match operation {
                    json_patch::PatchOperation::Test(test) => {
                        let actual = document.pointer(test.path.as_str());
                        if !actual.is_some_and(|a| same_json(a, &test.value)) {
                            return Err(Error::Conflict(format!(
                                "JSON Patch test failed at operation {i} ({}): nothing was changed",
                                test.path
                            )));
                        }
                        continue;
                    }
                    json_patch::PatchOperation::Copy(copy)
                        if copy
                            .path
                            .as_str()
                            .strip_prefix(copy.from.as_str())
                            .is_some_and(|rest| rest.starts_with('/')) =>
                    {
                        return Err(Error::Unprocessable(format!(
                            "JSON Patch operation {i} copies {} into itself ({})",
                            copy.from, copy.path
                        )));
                    }
                    _ => {}
                }
                json_patch::patch(&mut document, std::slice::from_ref(operation)).map_err(|e| {
                    Error::Unprocessable(format!("JSON Patch operation {i} does not apply: {e}"))
                })?;
                within_limits(
                    &document,
                    bound,
                    &format!("after operation {i}, the resource"),
                )?;
            }
        }
    }
    match document {
        Value::Object(map) => Ok(map),
        _ => Err(Error::Unprocessable(
            "the patched resource is not a JSON object".into(),
        )),
    }
}

/// How large a patched document may be: `limit` (the body limit) as a client would send it,
/// `bytes` with the server's own attributes.
#[derive(Clone, Copy)]
struct DocumentBound {
    limit: usize,
    bytes: usize,
}

/// Refuses a patched document larger than the body limit, nested too deeply, or holding what
/// no backend stores as sent; `what` names it in the message.
fn within_limits(document: &Value, bound: DocumentBound, what: &str) -> Result<(), Error> {
    if !validate::fits_in(document, bound.bytes) {
        return Err(Error::Unprocessable(format!(
            "{what} would be larger than {} bytes",
            bound.limit
        )));
    }
    match validate::unstorable(document) {
        Some(problem) => Err(Error::Unprocessable(format!("{what}: {problem}"))),
        None => Ok(()),
    }
}

/// Checks a patched resource document against its schema (`Usage`, `UsageSpecification`).
fn checked<M: ParseFromJSON>(document: Map<String, Value>) -> Result<Map<String, Value>, Error> {
    Document::<M>::parse(Value::Object(document))
        .map(Document::into_json)
        .map_err(|e| Error::BadRequest(e.into_message()))
}
