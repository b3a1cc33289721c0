//! `/usageSpecification`: the operations on usage specifications.

use super::Handlers;
use crate::generated::endpoints::{
    CreateUsageSpecificationResponse, DeleteUsageSpecificationResponse,
    ListUsageSpecificationResponse, PatchUsageSpecificationResponse,
    RetrieveUsageSpecificationResponse,
};
use crate::generated::models::{
    JsonPatchOperation, UsageSpecification, UsageSpecificationCreate, UsageSpecificationUpdate,
};
use crate::model::document::Document;
use crate::model::document::JsonBody;
use crate::model::patch::PatchRequest;
use crate::model::scalar::Integer;
use chrono::{SecondsFormat, Utc};
use entity::usage_specification::Entity as SpecificationTable;
use poem::Request;
use serde_json::{Map, Value};

fn now() -> Value {
    Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A new specification carries the time it was stored unless the client gave one.
fn stamp_if_absent(document: &mut Map<String, Value>) {
    document.entry("lastUpdate").or_insert_with(now);
}

/// Every change moves `lastUpdate` forward.
fn stamp(document: &mut Map<String, Value>) {
    document.insert("lastUpdate".into(), now());
}

impl Handlers {
    pub async fn list_usage_specification(
        &self,
        request: &Request,
        fields: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListUsageSpecificationResponse> {
        let page = self
            .list_resources::<SpecificationTable, UsageSpecification>(
                request, fields, offset, limit,
            )
            .await?;
        let headers = (Some(page.count), Some(page.total), page.link);
        Ok(if page.partial {
            ListUsageSpecificationResponse::PartialContent(
                JsonBody(page.items),
                headers.0,
                headers.1,
                headers.2,
            )
        } else {
            ListUsageSpecificationResponse::Ok(
                JsonBody(page.items),
                headers.0,
                headers.1,
                headers.2,
            )
        })
    }

    pub async fn create_usage_specification(
        &self,
        request: &Request,
        body: Document<UsageSpecificationCreate>,
    ) -> poem::Result<CreateUsageSpecificationResponse> {
        let specification = self
            .create_resource::<SpecificationTable, UsageSpecification, _>(
                request,
                body,
                stamp_if_absent,
            )
            .await?;
        Ok(CreateUsageSpecificationResponse::Created(
            JsonBody(specification.body),
            Some(specification.etag),
        ))
    }

    pub async fn retrieve_usage_specification(
        &self,
        request: &Request,
        id: String,
        fields: Option<String>,
    ) -> poem::Result<RetrieveUsageSpecificationResponse> {
        let specification = self
            .retrieve_resource::<SpecificationTable, UsageSpecification>(request, &id, fields)
            .await?;
        Ok(RetrieveUsageSpecificationResponse::Ok(
            JsonBody(specification.body),
            Some(specification.etag),
        ))
    }

    pub async fn patch_usage_specification(
        &self,
        request: &Request,
        id: String,
        if_match: Option<String>,
        body: PatchRequest<UsageSpecificationUpdate, JsonPatchOperation>,
    ) -> poem::Result<PatchUsageSpecificationResponse> {
        let specification = self
            .patch_resource::<SpecificationTable, UsageSpecification>(
                request,
                &id,
                if_match,
                body.patch,
                |_, after| {
                    stamp(after);
                    Ok(())
                },
            )
            .await?;
        Ok(PatchUsageSpecificationResponse::Ok(
            JsonBody(specification.body),
            Some(specification.etag),
        ))
    }

    pub async fn delete_usage_specification(
        &self,
        request: &Request,
        id: String,
        if_match: Option<String>,
    ) -> poem::Result<DeleteUsageSpecificationResponse> {
        self.delete_resource::<SpecificationTable>(request, &id, if_match)
            .await?;
        Ok(DeleteUsageSpecificationResponse::NoContent)
    }
}
