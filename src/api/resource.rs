//! The operations both resources share (list, create, retrieve, patch, delete), written once
//! for any resource table; `usage.rs` and `usage_specification.rs` wrap them in their
//! generated response types.

use super::representation::{href, link_header, paging, resource_body};
use super::Handlers;
use crate::error::Error;
use crate::model::document::Document;
use crate::model::scalar::Integer;
use crate::query::{self, FieldSelection};
use crate::store::{StoredResource, Table};
use poem::Request;
use poem_openapi::types::ParseFromJSON;
use serde_json::{Map, Value};

/// Attributes the server owns: a body may not set them.
const SERVER_OWNED: &[&str] = &["id", "href"];

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

fn fields<T: Table>(fields: Option<&str>) -> Result<Option<FieldSelection>, Error> {
    fields
        .map(|f| FieldSelection::parse(T::KIND, f))
        .transpose()
}

impl Handlers {
    fn body<T: Table, M>(
        &self,
        request: &Request,
        row: &StoredResource,
        fields: Option<&FieldSelection>,
    ) -> Document<M> {
        let href = href(&self.settings, request, T::KIND, &row.id);
        Document::from_json(resource_body(&row.document, &row.id, href, fields))
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
        let raw_query = request.uri().query().unwrap_or("");
        let filter = query::filter::parse(raw_query, query::RESERVED)?;
        let condition = query::compile::compile::<T>(&filter, self.store.backend())?;
        let sort = sort_param(raw_query)?
            .map(|s| query::sort::parse(T::KIND, &s))
            .transpose()?
            .unwrap_or_default();
        let order = query::sort::order_terms::<T>(&sort, self.store.backend());
        let order = if sort.is_empty() { Vec::new() } else { order };
        let page = self
            .store
            .list::<T>(condition, order, offset, limit)
            .await?;
        let items: Vec<Document<M>> = page
            .items
            .iter()
            .map(|row| self.body::<T, M>(request, row, selection.as_ref()))
            .collect();
        let count = items.len() as u64;
        Ok(ListPage {
            link: link_header(&self.settings, request, offset, limit, page.total),
            partial: paged && count < page.total,
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
    ) -> Result<Document<M>, Error>
    where
        T: Table,
        M: ParseFromJSON,
    {
        let id = uuid::Uuid::new_v4().to_string();
        let mut document = Map::new();
        document.insert("id".into(), Value::String(id.clone()));
        document.insert(
            "href".into(),
            Value::String(href(&self.settings, request, T::KIND, &id)),
        );
        for (key, value) in body.into_json() {
            if !SERVER_OWNED.contains(&key.as_str()) {
                document.insert(key, value);
            }
        }
        complete(&mut document);
        let document = checked::<M>(document)?;
        let row = self.store.create::<T>(document).await?;
        Ok(self.body::<T, M>(request, &row, None))
    }

    pub(super) async fn retrieve_resource<T, M>(
        &self,
        request: &Request,
        id: &str,
        fields_param: Option<String>,
    ) -> Result<Document<M>, Error>
    where
        T: Table,
    {
        let selection = fields::<T>(fields_param.as_deref())?;
        let row = self.store.find::<T>(id).await?;
        Ok(self.body::<T, M>(request, &row, selection.as_ref()))
    }

    /// JSON Merge Patch (RFC 7396): objects merge, arrays are replaced, null removes. The result
    /// must still be a valid resource.
    pub(super) async fn patch_resource<T, M, U>(
        &self,
        request: &Request,
        id: &str,
        patch: Document<U>,
        complete: impl Fn(&mut Map<String, Value>),
    ) -> Result<Document<M>, Error>
    where
        T: Table,
        M: ParseFromJSON,
    {
        let patch = patch.into_json();
        if let Some(owned) = SERVER_OWNED.iter().find(|k| patch.contains_key(**k)) {
            return Err(Error::BadRequest(format!(
                "{owned} is set by the server and cannot be patched"
            )));
        }
        let patch = Value::Object(patch);
        let row = self
            .store
            .update::<T, _>(id, None, |current| {
                let mut merged = Value::Object(current.clone());
                json_patch::merge(&mut merged, &patch);
                let Value::Object(mut merged) = merged else {
                    return Err(Error::Internal(
                        "merge patch changed the document type".into(),
                    ));
                };
                complete(&mut merged);
                checked::<M>(merged)
            })
            .await?;
        Ok(self.body::<T, M>(request, &row, None))
    }

    pub(super) async fn delete_resource<T>(&self, id: &str) -> Result<(), Error>
    where
        T: Table,
    {
        self.store.delete::<T>(id, None).await
    }
}

/// Checks a complete resource document against its schema (`Usage`, `UsageSpecification`).
fn checked<M: ParseFromJSON>(document: Map<String, Value>) -> Result<Map<String, Value>, Error> {
    Document::<M>::parse(Value::Object(document))
        .map(Document::into_json)
        .map_err(|e| Error::BadRequest(e.into_message()))
}
