//! Starting a server per test, and small helpers to talk to it.

#![allow(dead_code)]

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use tmf635::app::App;
use tmf635::Config;

pub use crate::scratch_database::{older_schema, ScratchDatabase};

pub const BASE_PATH: &str = "/tmf-api/usageManagement/v4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The API as one client reaches it (a `TestApp` is one, without credentials).
pub struct Api {
    /// `http://127.0.0.1:PORT/tmf-api/usageManagement/v4`
    pub base: String,
    pub client: Client,
}

/// A running server with its own database; the database is dropped with it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub root: String,
    api: Api,
    pub backend: Backend,
    /// Deleted when the test app is dropped.
    database: ScratchDatabase,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts a server on a fresh database of `backend`; None (after saying why) when the
    /// backend is PostgreSQL and none is reachable and CI did not require it.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like `spawn`, with settings changed by `configure`.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        Self::spawn_prepared(backend, configure, |_| async {}).await
    }

    /// Like `spawn_with`, running `prepare` on the fresh database's URL before the server
    /// starts (e.g. to lay down an older schema and data the server then migrates).
    pub async fn spawn_prepared<F, P>(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        prepare: P,
    ) -> Option<TestApp>
    where
        P: FnOnce(String) -> F,
        F: std::future::Future<Output = ()>,
    {
        let database = ScratchDatabase::create(backend).await?;
        let url = database.url.clone();
        prepare(url.clone()).await;
        let mut config = Config::with_database(&url);
        config.listen = "127.0.0.1:0".into();
        config.db_max_connections = 4;
        // The test listeners are on loopback, which callbacks may not reach by default.
        config.callback_allow_cidrs = "127.0.0.0/8".parse().expect("a CIDR");
        configure(&mut config);
        let app = App::build(&config).await.expect("the server starts");
        let addr = app.local_addr().expect("the server is bound");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        let root = format!("http://{addr}");
        Some(TestApp {
            api: Api {
                base: format!("{root}{BASE_PATH}"),
                client: Client::new(),
            },
            root,
            backend,
            database,
            shutdown: Some(tx),
        })
    }

    /// The URL of the server's database (for tests that look at its rows).
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// Ends every session the server has open on its PostgreSQL database, as a restart of
    /// the database would; nothing on SQLite.
    pub async fn end_database_sessions(&self) {
        self.database.end_sessions().await;
    }

    /// PostgreSQL: refuses (or allows again) new connections to the server's database and
    /// ends the open ones, as a database going away would; nothing on SQLite.
    pub async fn refuse_database_connections(&self, refuse: bool) {
        self.database.refuse_connections(refuse).await;
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET answers")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST answers")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PATCH answers")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE answers")
    }

    /// Any method, raw body and content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send().await.expect("the server answers")
    }

    /// POSTs and returns the created resource (asserting 201).
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let response = self.post(path, body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "POST {path} {body}");
        response.json().await.expect("a JSON body")
    }
    /// The absolute href the server gives `resource/id` when reached at `self.root`.
    pub fn href(&self, resource: &str, id: &str) -> String {
        format!("{}/{resource}/{id}", self.base)
    }

    /// GETs a list (path with its query) and checks the answer's shape: 200 (or 206 for a
    /// page of a longer list), both count headers, and `X-Result-Count` = items in the body.
    pub async fn list(&self, path: &str) -> Listing {
        let response = self.get(path).await;
        let status = response.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT,
            "GET {path}: {status} {}",
            response.text().await.unwrap_or_default()
        );
        let total = count_header(&response, "x-total-count");
        let count = count_header(&response, "x-result-count");
        let body = json_body(response).await;
        let items = body
            .as_array()
            .unwrap_or_else(|| panic!("GET {path} answers an array, not {body}"))
            .clone();
        assert_eq!(count, items.len() as u64, "X-Result-Count of GET {path}");
        assert!(
            total >= count,
            "X-Total-Count >= X-Result-Count on GET {path}"
        );
        Listing {
            status,
            total,
            count,
            items,
        }
    }

    /// `X-Total-Count` of a list with a query: how many match.
    pub async fn total(&self, path: &str) -> u64 {
        self.list(path).await.total
    }

    /// GETs one resource, asserting 200.
    pub async fn read(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        json_body(response).await
    }

    /// PATCHes with `application/json`, asserting 200; returns the answered resource.
    pub async fn patch_ok(&self, path: &str, body: &Value) -> Value {
        let response = self.patch(path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "PATCH {path} {body}: {text}");
        serde_json::from_str(&text).expect("a JSON body")
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// The API as a client sending `header: value` with every request (credentials).
    pub fn with_header(&self, header: &str, value: &str) -> Api {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::HeaderName::from_bytes(header.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
        Api {
            base: self.api.base.clone(),
            client: Client::builder()
                .default_headers(headers)
                .build()
                .expect("a client"),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server; its database goes with the `database` field right after.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts a TMF `Error` body with the given status; returns its message.
pub async fn assert_tmf_error(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value = response.json().await.expect("an Error body in JSON");
    for key in ["code", "reason", "message", "status"] {
        assert!(body[key].is_string(), "Error.{key} is a string in {body}");
    }
    assert_eq!(body["status"], status.to_string(), "Error.status in {body}");
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Defines each test twice, `sqlite::name` and `postgres::name`, with `app: TestApp`.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await else { return };
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await else { return };
                    $body
                }
            )*
        }
    };
}

/// Like `backend_tests!`, with the server's settings changed by `configure` (a closure taking
/// `&mut Config`). Use it inside a module of its own: it defines `sqlite` and `postgres`.
#[macro_export]
macro_rules! backend_tests_with {
    ($configure:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $configure).await else { return };
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some($app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, $configure).await else { return };
                    $body
                }
            )*
        }
    };
}

/// One answer of a list operation.
#[derive(Debug)]
pub struct Listing {
    pub status: StatusCode,
    /// `X-Total-Count`: every match, across pages.
    pub total: u64,
    /// `X-Result-Count`: the items of this page.
    pub count: u64,
    pub items: Vec<Value>,
}

impl Listing {
    /// The `id` of each item, in order.
    pub fn ids(&self) -> Vec<String> {
        self.items.iter().map(id_of).collect()
    }

    /// The value of `key` in each item, in order (`Null` where absent).
    pub fn values_of(&self, key: &str) -> Vec<Value> {
        self.items.iter().map(|i| i[key].clone()).collect()
    }
}

/// A count header (`X-Total-Count`, `X-Result-Count`) as a number; panics when absent.
pub fn count_header(response: &Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("the {name} header is present"))
        .to_str()
        .expect("an ASCII header")
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number"))
}

/// The JSON body of a response.
pub async fn json_body(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// The `id` of a resource, as a string; panics when there is none.
pub fn id_of(resource: &Value) -> String {
    resource["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id in {resource}"))
        .to_string()
}

/// The names of the first-level attributes of an object, sorted.
pub fn keys_of(resource: &Value) -> Vec<String> {
    let mut keys: Vec<String> = resource
        .as_object()
        .unwrap_or_else(|| panic!("an object: {resource}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

impl TestApp {
    /// Writes `request` as is on a new connection and reads the whole answer (the request
    /// should say `Connection: close`): the status and the body. For what a well-behaved
    /// client cannot send (chunked bodies without the stream feature, odd framing).
    pub async fn raw_http(&self, request: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.root.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("the server accepts connections");
        stream
            .write_all(request)
            .await
            .expect("the request is sent");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("the server answers within 10 s");
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("an HTTP status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

/// Runs the futures concurrently (on this task) and answers their outputs in order; for
/// requests that must reach the server at the same time.
pub async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Percent-encodes every byte outside the unreserved set of RFC 3986 (so `+`, `|`, `^`, `$`,
/// `(` ... reach the server as the characters they are).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
