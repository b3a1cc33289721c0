//! `GET /usage` with `Accept: application/x-ndjson`: the whole filtered list streamed, line by
//! line equal to its JSON pages put end to end (filter, `fields`, sort, offset and limit),
//! while a JSON Accept still pages.

use crate::backend_tests;
use crate::bulk::{finished, start_import, NDJSON};
use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, TestApp};
use serde_json::{json, Value};

/// Rows in the database: more than one page of the stream (it reads 1000 rows a page),
/// with repeated and missing `usageDate`s so that sorts have ties and nulls.
const ROWS: usize = 2300;

async fn load(app: &TestApp) {
    let rows: Vec<String> = (0..ROWS)
        .map(|i| {
            let kind = ["VOICE", "DATA", "SMS"][i % 3];
            let mut row = usage(kind, if i % 4 == 0 { "billed" } else { "rated" });
            match i % 10 {
                9 => {
                    row.as_object_mut().map(|o| o.remove("usageDate"));
                }
                n => {
                    row["usageDate"] =
                        json!(format!("2024-05-{:02}T10:00:00Z", 1 + (i / 7 + n) % 28))
                }
            }
            row.to_string()
        })
        .collect();
    let job = finished(app, &start_import(app, NDJSON, rows.join("\n")).await).await;
    assert_eq!(job["rowsCreated"], ROWS, "{job}");
}

async fn ndjson(app: &TestApp, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/usage?{query}")))
        .header("accept", NDJSON)
        .send()
        .await
        .expect("the stream is asked for")
}

/// The streamed list, one document per line.
async fn streamed(app: &TestApp, query: &str) -> Vec<Value> {
    let response = ndjson(app, query).await;
    assert_eq!(
        response.status().as_u16(),
        200,
        "GET /usage?{query} as NDJSON"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with(NDJSON), "{content_type}");
    assert!(
        response.headers().get("x-total-count").is_none(),
        "a stream has no count up front"
    );
    let text = response.text().await.expect("the stream's text");
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The JSON pages of a list (`limit` 100), from `start` until `end` or the last match.
async fn paged(app: &TestApp, query: &str, start: usize, end: Option<usize>) -> Vec<Value> {
    let mut items = Vec::new();
    loop {
        let offset = start + items.len();
        let limit = end.map_or(100, |end| end.saturating_sub(offset).min(100));
        if limit == 0 {
            return items;
        }
        let page = app
            .list(&format!("/usage?{query}&offset={offset}&limit={limit}"))
            .await;
        if page.items.is_empty() {
            return items;
        }
        items.extend(page.items);
    }
}

backend_tests! {
    async fn an_ndjson_list_is_its_json_pages_end_to_end(app) {
        load(&app).await;
        for query in [
            "usageType=VOICE&fields=usageType,usageDate,status&sort=-usageDate",
            "status=rated&sort=usageDate,-usageType",
            "fields=status",
            "usageType=DATA",
        ] {
            let stream = streamed(&app, query).await;
            let pages = paged(&app, query, 0, None).await;
            assert!(pages.len() > 700, "{query}: {} rows", pages.len());
            assert_eq!(stream.len(), pages.len(), "{query}");
            assert!(stream == pages, "GET /usage?{query}: the stream differs from the pages");
        }
        assert_eq!(streamed(&app, "").await.len(), ROWS, "everything, unpaged");
        // Offset and limit apply when given, across the stream's own pages.
        let query = "sort=-usageDate&fields=usageDate";
        let window = streamed(&app, &format!("{query}&offset=150&limit=1200")).await;
        assert_eq!(window.len(), 1200);
        assert!(window == paged(&app, query, 150, Some(1350)).await, "offset and limit, sorted");
        let window = streamed(&app, "offset=1999&limit=5000").await;
        assert_eq!(window.len(), ROWS - 1999);
        assert!(window == paged(&app, "", 1999, None).await, "offset and limit, newest first");
        assert!(streamed(&app, "limit=0").await.is_empty());
        assert!(streamed(&app, "usageType=NONE").await.is_empty());
    }

    async fn a_json_accept_still_pages(app) {
        load(&app).await;
        for accept in ["application/json", "*/*", "application/json, application/x-ndjson;q=0.5"] {
            let response = app.client.get(app.url("/usage?usageType=SMS")).header("accept", accept).send().await.expect("a list");
            assert_eq!(response.status().as_u16(), 200, "{accept}");
            let total = response.headers()["x-total-count"].to_str().unwrap_or_default().to_string();
            assert_eq!(total, (ROWS / 3).to_string(), "{accept}");
            let page: Value = response.json().await.expect("a JSON array");
            let items = page.as_array().map(Vec::len).unwrap_or_default();
            assert!(items > 0 && items < ROWS / 3, "{accept}: one page, not all ({items})");
        }
        let page = app.list("/usage?usageType=SMS&limit=10").await;
        assert_eq!((page.status.as_u16(), page.count), (206, 10));
    }

    async fn a_bad_streamed_list_answers_a_tmf_error(app) {
        for query in ["offset=-1", "limit=-5", "color=red", "sort=nope", "fields=nope", "usageDate.gt=yesterday"] {
            let response = ndjson(&app, query).await;
            assert_tmf_error(response, 400).await;
        }
    }
}
