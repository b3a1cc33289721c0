//! `Rows<T>`: a response of usages in bulk, streamed as NDJSON (one `T` per line) or CSV
//! (`csv_row`'s columns), read page by page while the client downloads: memory holds one page.

use super::{csv_row, Format, CSV, NDJSON};
use crate::error::Error;
use futures_util::stream::{self, Stream, StreamExt};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::ResponseContent;
use serde_json::{Map, Value};
use std::future::Future;
use std::marker::PhantomData;

pub struct Rows<T> {
    format: Format,
    body: poem::Body,
    model: PhantomData<fn() -> T>,
}

impl<T: Type> ResponseContent for Rows<T> {
    fn media_types() -> Vec<MetaMediaType> {
        vec![
            MetaMediaType {
                content_type: NDJSON,
                schema: T::schema_ref(),
            },
            MetaMediaType {
                content_type: CSV,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
            },
        ]
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for Rows<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(self.format.content_type())
            .body(self.body)
    }
}

/// A page of rows read from where the last one ended: the documents (JSON text, each with its
/// id) and where the next page starts (None: this was the last).
pub type Page<C = String> = (Vec<(String, String)>, Option<C>);

impl<T: Send + 'static> Rows<T> {
    /// Streams the pages `next` reads, from the first (`next(None)`) until one says it was
    /// the last. A failure mid-stream ends the body early (the status is already sent): the
    /// client sees a truncated download, and the server log says why.
    pub fn stream<C, F, Fut>(format: Format, next: F) -> Rows<T>
    where
        C: Send + 'static,
        F: Fn(Option<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Page<C>, Error>> + Send + 'static,
    {
        let columns = csv_row::columns();
        let header =
            (format == Format::Csv).then(|| csv_line(columns.iter().map(|(n, _)| n.to_string())));
        let pages = stream::unfold(Some(None), move |cursor: Option<Option<C>>| {
            let page = cursor.map(&next);
            async move {
                let (rows, after) = match page?.await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::error!(error = %e, "an export stopped");
                        return Some((Err(std::io::Error::other(e.to_string())), None));
                    }
                };
                Some((Ok(rows), after.map(Some)))
            }
        });
        let columns_for_rows = columns.clone();
        let body = pages.map(move |page| {
            page.map(|rows| match format {
                Format::Csv => csv_rows(&rows, &columns_for_rows),
                _ => ndjson_rows(&rows),
            })
        });
        let body = stream::iter(header.map(Ok)).chain(body);
        Rows {
            format,
            body: poem::Body::from_bytes_stream(stop_after_error(body)),
            model: PhantomData,
        }
    }
}

/// Ends the stream at its first error (after yielding it, so the connection is cut).
fn stop_after_error<S>(s: S) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>>
where
    S: Stream<Item = Result<Vec<u8>, std::io::Error>>,
{
    s.scan(false, |failed, item| {
        if *failed {
            return std::future::ready(None);
        }
        *failed = item.is_err();
        std::future::ready(Some(item))
    })
}

fn ndjson_rows(rows: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|(_, r)| r.len() + 1).sum());
    for (_, json) in rows {
        out.extend_from_slice(json.as_bytes());
        out.push(b'\n');
    }
    out
}

fn csv_rows(rows: &[(String, String)], columns: &[(&str, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, json) in rows {
        let document = match serde_json::from_str(json) {
            Ok(Value::Object(document)) => document,
            _ => Map::new(),
        };
        out.extend(csv_line(csv_row::cells(&document, columns)));
    }
    out
}

/// One CSV record, quoted as needed, ending in a newline.
fn csv_line(cells: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(cells.into_iter().collect::<Vec<_>>());
    writer.into_inner().unwrap_or_default()
}
