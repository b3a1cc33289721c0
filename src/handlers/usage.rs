//! `/usage`: the operations on usages.

use super::Handlers;
use crate::bulk::{wants_ndjson, Negotiated};
use crate::error::Error;
use crate::generated::endpoints::{
    CreateUsageResponse, DeleteUsageResponse, ListUsageResponse, PatchUsageResponse,
    RetrieveUsageResponse,
};
use crate::generated::models::{JsonPatchOperation, Usage, UsageCreate, UsageUpdate};
use crate::model::document::Document;
use crate::model::document::JsonBody;
use crate::model::patch::PatchRequest;
use crate::model::scalar::Integer;
use crate::resource_kind::usage_transition_allowed;
use entity::usage::Entity as UsageTable;
use poem::Request;
use serde_json::{Map, Value};

impl Handlers {
    pub async fn list_usage(
        &self,
        request: &Request,
        fields: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
        // Declared filters, read with every other filter from the query string.
        _status: Option<String>,
        _usage_type: Option<String>,
    ) -> poem::Result<ListUsageResponse> {
        if wants_ndjson(request) {
            // Streamed whole: a count up front would cost another pass over the matches.
            let rows = self.stream_usages(request, fields, offset, limit)?;
            return Ok(ListUsageResponse::Ok(
                Negotiated::Ndjson(rows),
                None,
                None,
                None,
            ));
        }
        let page = self
            .list_resources::<UsageTable, Usage>(request, fields, offset, limit)
            .await?;
        let headers = (Some(page.count), Some(page.total), page.link);
        Ok(if page.partial {
            ListUsageResponse::PartialContent(JsonBody(page.items), headers.0, headers.1, headers.2)
        } else {
            let body = Negotiated::Json(JsonBody(page.items));
            ListUsageResponse::Ok(body, headers.0, headers.1, headers.2)
        })
    }

    pub async fn create_usage(
        &self,
        request: &Request,
        body: Document<UsageCreate>,
    ) -> poem::Result<CreateUsageResponse> {
        let usage = self
            .create_resource::<UsageTable, Usage, _>(request, body, |_| {})
            .await?;
        Ok(CreateUsageResponse::Created(
            JsonBody(usage.body),
            Some(usage.etag),
        ))
    }

    pub async fn retrieve_usage(
        &self,
        request: &Request,
        id: String,
        fields: Option<String>,
    ) -> poem::Result<RetrieveUsageResponse> {
        let usage = self
            .retrieve_resource::<UsageTable, Usage>(request, &id, fields)
            .await?;
        Ok(RetrieveUsageResponse::Ok(
            JsonBody(usage.body),
            Some(usage.etag),
        ))
    }

    pub async fn patch_usage(
        &self,
        request: &Request,
        id: String,
        if_match: Option<String>,
        body: PatchRequest<UsageUpdate, JsonPatchOperation>,
    ) -> poem::Result<PatchUsageResponse> {
        let enforce = self.settings.enforce_usage_lifecycle;
        let usage = self
            .patch_resource::<UsageTable, Usage>(
                request,
                &id,
                if_match,
                body.patch,
                |before, after| check_lifecycle(enforce, before, after),
            )
            .await?;
        Ok(PatchUsageResponse::Ok(
            JsonBody(usage.body),
            Some(usage.etag),
        ))
    }

    pub async fn delete_usage(
        &self,
        request: &Request,
        id: String,
        if_match: Option<String>,
    ) -> poem::Result<DeleteUsageResponse> {
        self.delete_resource::<UsageTable>(request, &id, if_match)
            .await?;
        Ok(DeleteUsageResponse::NoContent)
    }
}

/// With the lifecycle check on, refuses a status change the usage lifecycle does not allow.
fn check_lifecycle(
    enforce: bool,
    before: &Map<String, Value>,
    after: &mut Map<String, Value>,
) -> Result<(), Error> {
    let status = |doc: &Map<String, Value>| {
        doc.get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match (enforce, status(before), status(after)) {
        (true, Some(from), Some(to)) if !usage_transition_allowed(&from, &to) => Err(
            Error::Conflict(format!("a usage cannot go from status {from} to {to}")),
        ),
        _ => Ok(()),
    }
}
