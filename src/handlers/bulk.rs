//! `/importJob` and `/exportJob`: usages in bulk (see `crate::bulk`).

use super::representation::{at_least_zero, base_url, href_prefix, paging};
use super::Handlers;
use crate::bulk::{Format, Rows, Upload};
use crate::error::Error;
use crate::generated::endpoints::{
    CreateExportJobResponse, CreateImportJobResponse, DownloadExportJobResponse,
    ListExportJobResponse, ListImportJobResponse, RetrieveExportJobResponse,
    RetrieveImportJobResponse,
};
use crate::generated::models::{ExportJob, ExportJobCreate, ImportJob, Usage, UsageCreate};
use crate::model::document::{Document, JsonBody};
use crate::model::scalar::Integer;
use crate::query::{self, FieldSelection};
use crate::resource_kind::ResourceKind;
use crate::store::export::Position;
use crate::store::jobs::{self, EXPORT, IMPORT};
use crate::store::resource::Rendered;
use crate::store::TenantStore;
use chrono::{DateTime, SecondsFormat, Utc};
use entity::bulk_job::Model as Job;
use entity::usage::Entity as UsageTable;
use poem::Request;
use serde_json::{json, Map, Value};

/// Rows an export, or a list streamed whole, reads per page.
const EXPORT_PAGE_ROWS: u64 = 1000;

/// Bytes of documents a streamed page holds at most (a page's rows are held two or three
/// times over while it is sent): what the server's memory for a download is made of,
/// whatever the size of the documents. Large enough that a page's query costs little
/// beside its rows.
const STREAM_PAGE_BYTES: usize = 1 << 20;

/// Parameters of a list that an export does not take: it is whole and in id order.
const NOT_FOR_EXPORT: &[&str] = &["sort", "offset", "limit"];

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Handlers {
    fn job_href(&self, request: &Request, kind: &str, id: &str) -> String {
        format!("{}/{kind}Job/{id}", base_url(&self.settings, request))
    }

    fn import_body(&self, request: &Request, job: Job) -> Document<ImportJob> {
        let mut body = json!({
            "id": job.id, "href": self.job_href(request, IMPORT, &job.id), "status": job.status,
            "contentType": job.content_type, "creationDate": time(job.created_at),
            "rowsRead": job.rows_read, "rowsCreated": job.rows_created,
            "rowsSkipped": job.rows_skipped, "rowsRejected": job.rows_rejected,
            "errors": serde_json::from_str::<Value>(&job.errors).unwrap_or(json!([])),
        });
        if let Some(at) = job.completed_at {
            body["completionDate"] = Value::String(time(at));
        }
        if let Some(message) = job.message {
            body["message"] = Value::String(message);
        }
        Document::from_json(object(body))
    }

    fn export_body(&self, request: &Request, job: Job) -> Document<ExportJob> {
        let href = self.job_href(request, EXPORT, &job.id);
        let mut body = json!({
            "id": job.id, "href": href, "status": job.status, "query": job.query.unwrap_or_default(),
            "contentType": job.content_type, "url": format!("{href}/download"),
            "creationDate": time(job.created_at),
        });
        if let Some(at) = job.completed_at {
            body["completionDate"] = Value::String(time(at));
        }
        Document::from_json(object(body))
    }

    pub async fn create_import_job(
        &self,
        request: &Request,
        body: Upload<UsageCreate>,
    ) -> poem::Result<CreateImportJobResponse> {
        let prefix = href_prefix(&self.settings, request, ResourceKind::Usage);
        let store = self.store_for(request)?;
        let job = self
            .imports
            .start(&store, body.format, body.body, prefix)
            .await?;
        Ok(CreateImportJobResponse::Created(JsonBody(
            self.import_body(request, job),
        )))
    }

    pub async fn retrieve_import_job(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<RetrieveImportJobResponse> {
        let job = self.store_for(request)?.job(IMPORT, &id).await?;
        Ok(RetrieveImportJobResponse::Ok(JsonBody(
            self.import_body(request, job),
        )))
    }

    pub async fn list_import_job(
        &self,
        request: &Request,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListImportJobResponse> {
        let (offset, limit) = paging(&self.settings, offset, limit)?;
        let jobs = self.store_for(request)?.jobs(IMPORT, offset, limit).await?;
        Ok(ListImportJobResponse::Ok(JsonBody(
            jobs.into_iter()
                .map(|job| self.import_body(request, job))
                .collect(),
        )))
    }

    pub async fn create_export_job(
        &self,
        request: &Request,
        body: Document<ExportJobCreate>,
    ) -> poem::Result<CreateExportJobResponse> {
        let body = body.into_json();
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
        let query = text("query").unwrap_or_default();
        let format = match text("contentType") {
            None => Format::Ndjson,
            Some(t) => match Format::of(t.as_str()) {
                Some(f @ (Format::Ndjson | Format::Csv)) => f,
                _ => {
                    return Err(Error::BadRequest(format!(
                        "contentType must be application/x-ndjson or text/csv, not {t:?}"
                    ))
                    .into())
                }
            },
        };
        let store = self.store_for(request)?;
        export_query(&query, &store)?;
        let now = jobs::now();
        let mut job = jobs::new_job(EXPORT, jobs::SUCCEEDED, format.content_type());
        job.query = Some(query);
        job.completed_at = Some(now);
        let job = store.create_job(job).await?;
        Ok(CreateExportJobResponse::Created(JsonBody(
            self.export_body(request, job),
        )))
    }

    pub async fn retrieve_export_job(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<RetrieveExportJobResponse> {
        let job = self.store_for(request)?.job(EXPORT, &id).await?;
        Ok(RetrieveExportJobResponse::Ok(JsonBody(
            self.export_body(request, job),
        )))
    }

    pub async fn list_export_job(
        &self,
        request: &Request,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> poem::Result<ListExportJobResponse> {
        let (offset, limit) = paging(&self.settings, offset, limit)?;
        let jobs = self.store_for(request)?.jobs(EXPORT, offset, limit).await?;
        Ok(ListExportJobResponse::Ok(JsonBody(
            jobs.into_iter()
                .map(|job| self.export_body(request, job))
                .collect(),
        )))
    }

    pub async fn download_export_job(
        &self,
        request: &Request,
        id: String,
    ) -> poem::Result<DownloadExportJobResponse> {
        let store = self.store_for(request)?;
        let job = store.job(EXPORT, &id).await?;
        let format = Format::of(&job.content_type).unwrap_or(Format::Ndjson);
        let (filter, fields) = export_query(job.query.as_deref().unwrap_or(""), &store)?;
        let fields = std::sync::Arc::new(fields);
        let prefix = href_prefix(&self.settings, request, ResourceKind::Usage);
        let max_bytes = self.settings.max_page_bytes.min(STREAM_PAGE_BYTES);
        let rows = Rows::<Usage>::stream(format, move |after| {
            let (store, filter, prefix, fields) = (
                store.clone(),
                filter.clone(),
                prefix.clone(),
                fields.clone(),
            );
            async move {
                let page = store
                    .export_page::<UsageTable>(filter, after, EXPORT_PAGE_ROWS, &prefix, max_bytes)
                    .await?;
                let next = page.last().map(|r| r.id.clone());
                Ok((projected(page, fields.as_ref().as_ref()), next))
            }
        });
        Ok(DownloadExportJobResponse::Ok(rows))
    }

    /// `GET /usage` as NDJSON: every usage the list selects (from `offset`, at most `limit`
    /// when given), in the list's order and with its `fields`, read a page at a time while
    /// the client downloads.
    pub(super) fn stream_usages(
        &self,
        request: &Request,
        fields: Option<String>,
        offset: Option<Integer>,
        limit: Option<Integer>,
    ) -> Result<Rows<Usage>, Error> {
        let selection =
            std::sync::Arc::new(super::operations::fields::<UsageTable>(fields.as_deref())?);
        let offset = at_least_zero("offset", offset)?.unwrap_or(0);
        let limit = at_least_zero("limit", limit)?;
        let store = self.store_for(request)?;
        let (compiled, order) = self.list_filter::<UsageTable>(request, &store)?;
        let filter = compiled.condition;
        let prefix = href_prefix(&self.settings, request, ResourceKind::Usage);
        let max_bytes = self.settings.max_page_bytes.min(STREAM_PAGE_BYTES);
        Ok(Rows::stream(Format::Ndjson, move |cursor| {
            let (from, remaining) = cursor.unwrap_or((Position::Offset(offset), limit));
            let (store, filter, order, prefix, selection) = (
                store.clone(),
                filter.clone(),
                order.clone(),
                prefix.clone(),
                selection.clone(),
            );
            async move {
                let rows = remaining.map_or(EXPORT_PAGE_ROWS, |r| r.min(EXPORT_PAGE_ROWS));
                if rows == 0 {
                    return Ok((Vec::new(), None));
                }
                let (page, next) = store
                    .list_page::<UsageTable>(filter, order, from, rows, &prefix, max_bytes)
                    .await?;
                let remaining = remaining.map(|r| r.saturating_sub(page.len() as u64));
                let next = next
                    .filter(|_| remaining != Some(0))
                    .map(|at| (at, remaining));
                Ok((projected(page, selection.as_ref().as_ref()), next))
            }
        }))
    }
}

/// Rows as the lines of a download: the stored text as it is, or cut down to `fields`.
fn projected(page: Vec<Rendered>, fields: Option<&FieldSelection>) -> Vec<(String, String)> {
    page.into_iter()
        .map(|row| {
            let id = row.id.clone();
            let json = match fields {
                None => row.json,
                Some(selection) => {
                    let document: Document<Usage> = Handlers::rendered_body(row, Some(selection));
                    Value::Object(document.into_json()).to_string()
                }
            };
            (id, json)
        })
        .collect()
}

/// An export's query: the filter of a list of usages, and its `fields`.
fn export_query(
    raw: &str,
    store: &TenantStore,
) -> Result<(sea_orm::sea_query::Condition, Option<FieldSelection>), Error> {
    let pairs = query::filter::pairs(raw)?;
    if let Some((name, _, _)) = pairs
        .iter()
        .find(|(n, _, _)| NOT_FOR_EXPORT.contains(&n.as_str()))
    {
        return Err(Error::BadRequest(format!(
            "{name} does not apply to an export: it is whole and in id order"
        )));
    }
    let fields = pairs
        .iter()
        .find(|(n, op, _)| n == "fields" && op.is_none())
        .map(|(_, _, v)| FieldSelection::parse(ResourceKind::Usage, v))
        .transpose()?;
    let filter = query::filter::parse(raw, query::RESERVED)?;
    let compiled = query::compile::compile::<UsageTable>(&filter, &[], store)?;
    Ok((compiled.condition, fields))
}
