//! Starting a server per test, and small helpers to talk to it.

#![allow(dead_code)]

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use tmf635::app::App;
use tmf635::Config;

pub const BASE_PATH: &str = "/tmf-api/usageManagement/v4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server with its own database; the database is dropped with it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub root: String,
    /// `http://127.0.0.1:PORT/tmf-api/usageManagement/v4`
    pub base: String,
    pub client: Client,
    pub backend: Backend,
    database: Database,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

enum Database {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

fn postgres_admin_url() -> String {
    std::env::var("TMF635_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn postgres_required() -> bool {
    std::env::var("TMF635_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Runs one SQL statement on the admin database; None when PostgreSQL is unreachable.
async fn postgres_admin(admin_url: &str, sql: &str) -> Option<()> {
    use sea_orm::ConnectionTrait;
    let mut options = sea_orm::ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .connect_timeout(std::time::Duration::from_secs(3))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.ok()?;
    db.execute_unprepared(sql).await.ok()?;
    db.close().await.ok()
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
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (url, database) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("tmf635-test-{id}.db"));
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Database::Sqlite(path),
                )
            }
            Backend::Postgres => {
                let name = format!("tmf635_test_{id}");
                if postgres_admin(&postgres_admin_url(), &format!("CREATE DATABASE {name}"))
                    .await
                    .is_none()
                {
                    if postgres_required() {
                        panic!(
                            "PostgreSQL at {} is required but unreachable",
                            postgres_admin_url()
                        );
                    }
                    eprintln!(
                        "SKIPPED: PostgreSQL not reachable at {}",
                        postgres_admin_url()
                    );
                    return None;
                }
                let admin_url = postgres_admin_url();
                let server_url = match admin_url.rsplit_once('/') {
                    Some((prefix, _)) => format!("{prefix}/{name}"),
                    None => format!("{admin_url}/{name}"),
                };
                (server_url, Database::Postgres { admin_url, name })
            }
        };
        let mut config = Config::with_database(&url);
        config.listen = "127.0.0.1:0".into();
        config.db_max_connections = 4;
        configure(&mut config);
        let app = App::build(&config).await.expect("the server starts");
        let addr = app.local_addr().expect("the server is bound");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        let root = format!("http://{addr}");
        Some(TestApp {
            base: format!("{root}{BASE_PATH}"),
            root,
            client: Client::new(),
            backend,
            database,
            shutdown: Some(tx),
        })
    }

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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match &self.database {
            Database::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Database::Postgres { admin_url, name } => {
                // The test's runtime is ending; drop the database from a runtime of our own.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(postgres_admin(
                            &admin_url,
                            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        ));
                    }
                })
                .join();
            }
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
