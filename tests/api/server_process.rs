//! The real `tmf635` binary as a child process on a loopback port, for tests that need what
//! an in-process server cannot show (SIGKILL, several instances, the process's exit and log).

use crate::helpers::{id_of, BASE_PATH};
use crate::listener_server::TestListener;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to migrate its database and answer.
pub const STARTUP: Duration = Duration::from_secs(30);

/// A `tmf635` process on a loopback port; SIGKILLed (if still running) when dropped.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT/tmf-api/usageManagement/v4`
    pub base: String,
    pub client: Client,
    /// Its stdout and stderr.
    log: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl ServerProcess {
    /// Starts the binary on `database_url` with fast delivery settings (polling every 20 ms,
    /// retrying after 50 ms up to 200 ms), delivering or not; waits until it answers.
    pub async fn start(database_url: &str, delivery_enabled: bool) -> ServerProcess {
        ServerProcess::start_with(database_url, delivery_enabled, &[]).await
    }

    /// `start`, with the variables `env` set too.
    pub async fn start_with(
        database_url: &str,
        delivery_enabled: bool,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "tmf635-process-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("the log file is created");
        let err = out.try_clone().expect("the log file is shared");
        let child = Command::new(env!("CARGO_BIN_EXE_tmf635"))
            .env("DATABASE_URL", database_url)
            .env("TMF635_LISTEN", format!("127.0.0.1:{port}"))
            .env("TMF635_DELIVERY_ENABLED", delivery_enabled.to_string())
            .env("TMF635_DELIVERY_POLL_MS", "20")
            .env("TMF635_DELIVERY_BACKOFF_MS", "50")
            .env("TMF635_DELIVERY_BACKOFF_MAX_MS", "200")
            .env("TMF635_CALLBACK_TIMEOUT_MS", "2000")
            .env("TMF635_DB_MAX_CONNECTIONS", "4")
            .env("TMF635_CALLBACK_ALLOW_CIDRS", "127.0.0.0/8")
            .env_remove("TMF635_CALLBACK_DENY_CIDRS")
            .env_remove("TMF635_MAX_SUBSCRIPTIONS")
            .env("RUST_LOG", "info")
            .env_remove("TMF635_CALLBACK_ALLOWED_HOSTS")
            .env_remove("TMF635_PUBLIC_URL")
            .env_remove("TMF635_DELIVERY_MAX_ATTEMPTS")
            .env_remove("TMF635_TEST_FAIL_SYNC_AFTER")
            .env_remove("TMF635_TEST_SYNC_DELAY_MS")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("the tmf635 binary starts");
        let mut process = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}{BASE_PATH}"),
            client: Client::new(),
            log,
        };
        process.wait_until_ready().await;
        process
    }

    pub async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tmf635 exited with {status} on start:\n{}", self.log());
            }
            let answer = self.client.get(format!("{}/hub", self.base)).send().await;
            if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(
                started.elapsed() < STARTUP,
                "tmf635 did not answer within {STARTUP:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to end by itself; its exit status.
    pub async fn wait_for_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "tmf635 still runs after {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, outside the API base path.
    pub fn root(&self) -> String {
        self.base.trim_end_matches(BASE_PATH).to_string()
    }

    /// SIGTERM: the process drains and stops by itself.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM was sent");
    }

    /// SIGKILL (no shutdown of any kind), and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log()));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs and answers the created resource, asserting 201.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let (status, created) = self.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {created}");
        created
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers `{listener}/{name}` for every event; answers its id.
    pub async fn subscribe(&self, listener: &TestListener, name: &str) -> String {
        let created = self
            .create(
                "/hub",
                &json!({"callback": listener.url(&format!("/{name}"))}),
            )
            .await;
        id_of(&created)
    }

    /// Waits until the subscription has `count` delivered deliveries and none pending.
    pub async fn wait_all_delivered(&self, subscription: &str, count: usize) {
        let started = Instant::now();
        loop {
            let path = format!("/hub/{subscription}/delivery?limit=1000");
            let (status, deliveries) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {deliveries}");
            let deliveries = deliveries.as_array().cloned().unwrap_or_default();
            let delivered = deliveries
                .iter()
                .filter(|d| d["status"] == "delivered")
                .count();
            if delivered == count && deliveries.len() == count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited for {count} delivered: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- log of tmf635 at {} ---\n{}", self.base, self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
