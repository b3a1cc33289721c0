//! `/usage`: the operations on usages.

use super::Handlers;
use crate::generated::endpoints::{
    CreateUsageResponse, DeleteUsageResponse, ListUsageResponse, PatchUsageResponse,
    RetrieveUsageResponse,
};
use crate::generated::models::{Usage, UsageCreate, UsageUpdate};
use crate::model::document::Document;
use crate::model::scalar::Integer;
use entity::usage::Entity as UsageTable;
use poem::Request;
use poem_openapi::payload::Json;

impl Handlers {
    pub async fn list_usage(
        &self,
        request: &Request,
        fields: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListUsageResponse> {
        let page = self
            .list_resources::<UsageTable, Usage>(request, fields, offset, limit)
            .await?;
        let headers = (Some(page.count), Some(page.total), page.link);
        Ok(if page.partial {
            ListUsageResponse::PartialContent(Json(page.items), headers.0, headers.1, headers.2)
        } else {
            ListUsageResponse::Ok(Json(page.items), headers.0, headers.1, headers.2)
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
        Ok(CreateUsageResponse::Created(Json(usage)))
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
        Ok(RetrieveUsageResponse::Ok(Json(usage)))
    }

    pub async fn patch_usage(
        &self,
        request: &Request,
        id: String,
        body: Document<UsageUpdate>,
    ) -> poem::Result<PatchUsageResponse> {
        let usage = self
            .patch_resource::<UsageTable, Usage, _>(request, &id, body, |_| {})
            .await?;
        Ok(PatchUsageResponse::Ok(Json(usage)))
    }

    pub async fn delete_usage(
        &self,
        _request: &Request,
        id: String,
    ) -> poem::Result<DeleteUsageResponse> {
        self.delete_resource::<UsageTable>(&id).await?;
        Ok(DeleteUsageResponse::NoContent)
    }
}
