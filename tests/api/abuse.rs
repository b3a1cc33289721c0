//! Requests built to hurt the server: each is answered with its TMF Error, the server stays up
//! with its memory bounded, and nothing stored changes.

use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, enc, id_of, TestApp};
use crate::{backend_tests, backend_tests_with};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The resident memory of this process (the server runs in it), in MiB.
fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Memory an abusive request may leave behind: far above what one bounded request needs, far
/// below what the unbounded one took (gigabytes, until the allocator aborted the process).
const MEMORY_BOUND_MIB: u64 = 256;

fn assert_memory_bounded(before: u64, what: &str) {
    let after = resident_mib();
    assert!(
        after < before + MEMORY_BOUND_MIB,
        "{what}: resident memory went from {before} to {after} MiB"
    );
}

/// The usage is exactly as it was, and the server still answers.
async fn assert_unchanged(app: &TestApp, path: &str, before: &Value) {
    let after = app.read(path).await;
    assert_eq!(&after, before, "the stored usage is unchanged");
}

/// A usage created for a test: its path and its stored form.
async fn stored_usage(app: &TestApp) -> (String, Value) {
    let created = app.create("/usage", &usage("VOICE", "rated")).await;
    let path = format!("/usage/{}", id_of(&created));
    let before = app.read(&path).await;
    (path, before)
}

async fn json_patch(app: &TestApp, path: &str, operations: Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .header("content-type", "application/json-patch+json")
        .body(operations.to_string())
        .send()
        .await
        .expect("the server answers")
}

/// `copy` operations that double an array again and again without ever copying into their
/// own source: 2^30 times the array, unless the document is bounded after each operation.
fn doubling_copies() -> Value {
    let mut operations = vec![json!({"op": "add", "path": "/bomb", "value": vec!["x"; 64]})];
    for _ in 0..30 {
        operations.push(json!({"op": "copy", "from": "/bomb", "path": "/shadow"}));
        operations.push(json!({"op": "copy", "from": "/shadow", "path": "/bomb/-"}));
    }
    Value::Array(operations)
}

/// A body of `bytes` bytes sent over HTTP/2 in frames, without a Content-Length.
fn streamed_body(bytes: usize) -> reqwest::Body {
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = bytes.div_ceil(chunk.len());
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    reqwest::Body::wrap_stream(stream)
}

fn http2() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an HTTP/2 client")
}

async fn post_usage(
    client: &reqwest::Client,
    app: &TestApp,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client
        .post(app.url("/usage"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers with a status")
}

/// A usage body padded with white space to `bytes` bytes: valid JSON, were it not too large.
fn padded_usage(bytes: usize) -> Vec<u8> {
    let mut body = usage("VOICE", "rated").to_string().into_bytes();
    body.resize(bytes, b' ');
    body
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!("leaf"), |inner, _| json!({ "inner": inner }))
}

backend_tests! {
    async fn a_patch_that_doubles_the_document_is_refused(app) {
        let (path, before) = stored_usage(&app).await;
        let memory = resident_mib();
        let response = json_patch(&app, &path, doubling_copies()).await;
        let message = assert_tmf_error(response, 422).await;
        assert!(message.contains("larger than"), "{message}");
        assert_memory_bounded(memory, "the patch bomb");
        assert_unchanged(&app, &path, &before).await;
    }

    async fn a_copy_into_its_own_subtree_is_refused(app) {
        let (path, before) = stored_usage(&app).await;
        let copy = json!([{"op": "copy", "from": "/usageCharacteristic", "path": "/usageCharacteristic/-"}]);
        let message = assert_tmf_error(json_patch(&app, &path, copy).await, 422).await;
        assert!(message.contains("into itself"), "{message}");
        assert_unchanged(&app, &path, &before).await;
    }

    async fn a_patch_with_too_many_operations_is_refused(app) {
        let (path, before) = stored_usage(&app).await;
        let operations: Vec<Value> = (0..101)
            .map(|_| json!({"op": "replace", "path": "/status", "value": "billed"}))
            .collect();
        let message = assert_tmf_error(json_patch(&app, &path, json!(operations)).await, 400).await;
        assert!(message.contains("at most 100 operations"), "{message}");
        assert_unchanged(&app, &path, &before).await;
    }

    async fn a_patch_may_not_nest_the_document_too_deeply(app) {
        let (path, before) = stored_usage(&app).await;
        // Each operation is shallow enough; together they nest past the limit.
        let leaf = format!("/second{}", "/inner".repeat(99));
        let operations = json!([
            {"op": "add", "path": "/deep", "value": nested(100)},
            {"op": "add", "path": "/second", "value": nested(100)},
            {"op": "copy", "from": "/deep", "path": leaf},
        ]);
        let message = assert_tmf_error(json_patch(&app, &path, operations).await, 422).await;
        assert!(message.contains("deeper than"), "{message}");
        assert_unchanged(&app, &path, &before).await;
    }

    async fn an_oversized_body_over_http2_without_a_length_is_refused(app) {
        let memory = resident_mib();
        let response = post_usage(&http2(), &app, streamed_body(20 * 1024 * 1024)).await;
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_tmf_error(response, 413).await;
        assert_memory_bounded(memory, "the 20 MB body over HTTP/2");
        assert_eq!(app.total("/usage").await, 0, "nothing stored");
    }

    async fn an_oversized_body_over_http2_with_its_length_is_answered(app) {
        let response = post_usage(&http2(), &app, padded_usage(2 * 1024 * 1024)).await;
        assert_tmf_error(response, 413).await;
        assert_eq!(app.total("/usage").await, 0, "nothing stored");
    }

    async fn an_oversized_chunked_body_over_http1_is_refused(app) {
        let response = post_usage(&app.client, &app, streamed_body(4 * 1024 * 1024)).await;
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_tmf_error(response, 413).await;
        assert_eq!(app.total("/usage").await, 0, "nothing stored");
    }

    async fn filters_beyond_the_caps_are_refused_naming_them(app) {
        app.create("/usage", &usage("VOICE", "rated")).await;
        let conditions: Vec<String> = (0..33).map(|i| format!("description.ne=d{i}")).collect();
        let values: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
        let cases = [
            (format!("/usage?{}", conditions.join("&")), "at most 32 filter conditions"),
            (format!("/usage?status={}", values.join(",")), "at most 100 values"),
            (format!("/usage?usageType.regex={}", enc(&"(a|b)".repeat(60))), "at most 256 characters"),
            (format!("/usage?description={}", "x".repeat(9000)), "at most 8192"),
        ];
        for (path, cap) in &cases {
            let message = assert_tmf_error(app.get(path).await, 400).await;
            assert!(message.contains(cap), "{cap}: {message}");
        }
        // The same grammar, in a subscription's query.
        let hub = json!({"callback": "http://127.0.0.1:9/listener", "query": conditions.join("&")});
        let message = assert_tmf_error(app.post("/hub", &hub).await, 400).await;
        assert!(message.contains("at most 32 filter conditions"), "{message}");
        assert_eq!(app.total("/usage").await, 1);
    }

    async fn numbers_no_backend_stores_as_sent_are_refused_naming_them(app) {
        let (path, before) = stored_usage(&app).await;
        for number in ["1e400", "-1e400", "1e-400", &format!("1.{}", "5".repeat(200))] {
            let body = usage("VOICE", "rated")
                .to_string()
                .replace("\"value\":100", &format!("\"value\":{number}"));
            assert!(body.contains(number), "the fixture holds the value 100");
            let response = app
                .send_raw(reqwest::Method::POST, "/usage", Some("application/json"), body.into_bytes())
                .await;
            let message = assert_tmf_error(response, 400).await;
            assert!(message.contains("usageCharacteristic[0].value"), "{number}: {message}");
            let patch = format!(r#"{{"usageCharacteristic": [{{"name": "v", "value": {number}}}]}}"#);
            let response = app
                .send_raw(reqwest::Method::PATCH, &path, Some("application/merge-patch+json"), patch.into_bytes())
                .await;
            assert_tmf_error(response, 400).await;
        }
        assert_eq!(app.total("/usage").await, 1);
        assert_unchanged(&app, &path, &before).await;
    }

    async fn deeply_nested_bodies_are_refused(app) {
        let mut body = usage("VOICE", "rated");
        body["usageCharacteristic"][0]["value"] = nested(200);
        assert_tmf_error(app.post("/usage", &body).await, 400).await;
        // Far deeper than the JSON parser follows: refused all the same, the server stays up.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let response = app
            .send_raw(reqwest::Method::POST, "/usage", Some("application/json"), deep.into_bytes())
            .await;
        assert_tmf_error(response, 400).await;
        assert_eq!(app.total("/usage").await, 0);
    }
}

/// A page whose documents pass the byte budget is cut short and answered as a partial page,
/// its `next` link starting where it stopped; following the links yields every usage once.
mod page_budget {
    use super::*;

    /// A usage of about 2 KB.
    fn large_usage(n: usize) -> Value {
        let mut body = usage("VOICE", "rated");
        body["description"] = json!(format!("{n}:{}", "d".repeat(2000)));
        body
    }

    /// The `next` link of a response, as a path under the API's base.
    fn next_link(response: &reqwest::Response, base: &str) -> Option<String> {
        let link = response.headers().get("link")?.to_str().ok()?;
        link.split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .and_then(|l| l.split(['<', '>']).nth(1))
            .map(|url| url.strip_prefix(base).unwrap_or(url).to_string())
    }

    backend_tests_with! {
        |config: &mut tmf635::Config| config.max_page_bytes = 5_000;
        async fn a_page_past_the_byte_budget_is_cut_short(app) {
            for n in 0..5 {
                app.create("/usage", &large_usage(n)).await;
            }
            let mut path = Some("/usage".to_string());
            let mut seen = Vec::new();
            while let Some(next) = path {
                let response = app.get(&next).await;
                assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{next}");
                path = next_link(&response, &app.base);
                let page: Vec<Value> = response.json().await.expect("a JSON page");
                assert!(page.len() <= 2, "at most two 2 KB usages fit in 5,000 bytes");
                seen.extend(page.iter().map(id_of));
            }
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 5, "every usage once across the pages");
        }
    }
}

/// Time and load limits: a client that sends slowly is cut off, a request past its time is
/// answered 503, and requests beyond the limit in flight are answered 503 with `Retry-After`.
mod time_limits {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn connect(app: &TestApp) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(app.root.trim_start_matches("http://"))
            .await
            .expect("the server accepts connections")
    }

    /// The headers of a POST whose body of `length` bytes is still to come.
    fn post_head(length: usize) -> String {
        format!(
            "POST {}/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n",
            crate::helpers::BASE_PATH
        )
    }

    backend_tests_with! {
        |config: &mut tmf635::Config| {
            config.request_read_timeout_ms = 500;
            config.request_timeout_ms = 300;
            config.max_requests_in_flight = 1;
        };

        async fn a_client_sending_its_headers_a_byte_at_a_time_is_cut_off(app) {
            let mut stream = connect(&app).await;
            let started = Instant::now();
            let request = format!("GET {}/usage HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", crate::helpers::BASE_PATH);
            let mut cut_off = false;
            for byte in request.as_bytes() {
                if stream.write_all(&[*byte]).await.is_err() {
                    cut_off = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                if started.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
            let mut answer = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            assert!(cut_off || matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the connection is closed");
            assert!(answer.is_empty(), "no answer to a request that never arrived in time: {}", String::from_utf8_lossy(&answer));
            assert!(started.elapsed() < Duration::from_secs(5), "cut off after {:?}", started.elapsed());
            assert_eq!(app.total("/usage").await, 0, "the server still answers");
        }

        async fn a_request_past_its_time_limit_is_503(app) {
            // Its body arrives after the time limit: the request is answered 503 meanwhile.
            let body = usage("VOICE", "rated").to_string();
            let mut stream = connect(&app).await;
            stream.write_all(post_head(body.len()).as_bytes()).await.expect("sent");
            let mut answer = vec![0; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
                .await
                .expect("answered within 5 s")
                .expect("read");
            let text = String::from_utf8_lossy(&answer[..read]);
            assert!(text.starts_with("HTTP/1.1 503"), "{text}");
            assert!(text.contains("did not complete within 300 ms"), "{text}");
            assert_eq!(app.total("/usage").await, 0, "nothing stored");
        }

        async fn requests_beyond_the_limit_in_flight_are_503_with_retry_after(app) {
            // One request in flight, waiting for its body, holds the only place.
            let mut stream = connect(&app).await;
            stream.write_all(post_head(100).as_bytes()).await.expect("sent");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let response = app.get("/usage").await;
            assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("")), Some("1"));
            let message = assert_tmf_error(response, 503).await;
            assert!(message.contains("answering 1 requests already"), "{message}");
            drop(stream);
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(app.total("/usage").await, 0, "answered again once the place is free");
        }
    }
}

/// A statement past the statement time limit is stopped and answered 503: cancelled by
/// PostgreSQL's `statement_timeout`, interrupted by the deadline of SQLite's list pool.
mod statement_timeout {
    use super::*;
    use crate::helpers::Backend;
    use sea_orm::{ConnectionTrait, TransactionTrait};
    use std::time::Duration;

    /// Fills the database at `url` with usages of long descriptions, through a server with
    /// the default settings, and stops it.
    async fn fill(url: String) {
        let mut config = tmf635::Config::with_database(&url);
        config.listen = "127.0.0.1:0".into();
        let app = tmf635::app::App::build(&config)
            .await
            .expect("the server starts");
        let base = format!(
            "http://{}{}",
            app.local_addr().expect("bound"),
            crate::helpers::BASE_PATH
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let creates = (0..300).map(|n| {
            let mut body = usage("VOICE", "rated");
            body["description"] = json!(format!("{n}{}", "a".repeat(16_000)));
            client.post(format!("{base}/usage")).json(&body).send()
        });
        for response in futures_util::future::join_all(creates).await {
            assert_eq!(response.expect("answered").status(), StatusCode::CREATED);
        }
        let _ = stop.send(());
        let _ = server.await;
    }

    /// SQLite's deadline covers list queries only, so a limit of 1 ms cuts a regex over
    /// 300 long descriptions and nothing else.
    #[tokio::test]
    async fn sqlite_a_statement_past_the_time_limit_is_503() {
        let Some(app) = TestApp::spawn_prepared(
            Backend::Sqlite,
            |config| config.statement_timeout_ms = 1,
            fill,
        )
        .await
        else {
            return;
        };
        let response = app.get("/usage?description.regex=[b-z]{2}&limit=1").await;
        let message = assert_tmf_error(response, 503).await;
        assert!(message.contains("statement time limit"), "{message}");
        // Nothing is held: a read outside the list pool is answered.
        assert_eq!(
            app.get("/usage/unknown").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    /// PostgreSQL's limit covers every statement, the server's own startup reads among them,
    /// so it is set far above what a small statement takes on a loaded machine, and the list
    /// is held past it by a lock on the usage table.
    #[tokio::test]
    async fn postgres_a_statement_past_the_time_limit_is_503() {
        let Some(app) = TestApp::spawn_with(Backend::Postgres, |config| {
            config.statement_timeout_ms = 1_000;
        })
        .await
        else {
            return;
        };
        app.create("/usage", &usage("VOICE", "rated")).await;
        let db = sea_orm::Database::connect(app.database_url())
            .await
            .expect("the database opens");
        let lock = db.begin().await.expect("a transaction");
        lock.execute_unprepared("LOCK TABLE usage IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("the usage table is locked");
        let response = tokio::time::timeout(Duration::from_secs(30), app.get("/usage?limit=1"))
            .await
            .expect("answered before the lock is released");
        let message = assert_tmf_error(response, 503).await;
        assert!(message.contains("statement time limit"), "{message}");
        lock.rollback().await.expect("the lock is released");
        // Nothing is held: the same list is answered once the lock is gone.
        assert_eq!(app.total("/usage?limit=1").await, 1);
    }
}

/// PostgreSQL sessions ended again and again while JSON Patches are applied: a patch is
/// applied once or, when its connection died before the commit, not at all; never twice.
mod lost_connections {
    use super::*;
    use crate::helpers::Backend;
    use std::collections::BTreeMap;

    #[tokio::test]
    async fn a_json_patch_is_never_applied_twice() {
        let Some(app) = TestApp::spawn(Backend::Postgres).await else {
            return;
        };
        let (path, _) = stored_usage(&app).await;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let ending = async {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                app.end_database_sessions().await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        let patching = async {
            let mut answered = BTreeMap::new();
            for n in 0..60 {
                let add = json!([{"op": "add", "path": "/usageCharacteristic/-",
                    "value": {"name": format!("n{n}"), "value": n}}]);
                let status = json_patch(&app, &path, add).await.status().as_u16();
                answered.insert(format!("n{n}"), status);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            answered
        };
        let ((), answered) = tokio::join!(ending, patching);
        let stored = app.read(&path).await;
        let names: Vec<&str> = stored["usageCharacteristic"]
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .filter(|name| name.starts_with('n'))
            .collect();
        for (name, status) in &answered {
            let times = names.iter().filter(|n| *n == name).count();
            assert!(times <= 1, "{name} applied {times} times: {names:?}");
            if *status == 200 {
                assert_eq!(times, 1, "{name} answered 200 but is not stored");
            }
        }
        assert!(
            answered.values().any(|s| *s != 200),
            "the sessions were ended while patching: some patch saw its connection end"
        );
    }
}
