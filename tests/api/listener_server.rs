//! A real HTTP listener on loopback for event deliveries: it records every POST (path and
//! JSON body, in arrival order, with the status it answered), and can be switched to answer
//! 503 (down), told to redirect some paths, or be stopped and restarted on the same port.
//! Other methods are recorded too and answered 200, as a typical web server would.

#![allow(dead_code)]

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Response, Server};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `wait_for` waits before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// One POST the listener saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The request path, e.g. `/all/listener/usageCreateEvent`.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The body as sent (what a signature covers).
    pub text: String,
    /// The Standard Webhooks headers (`webhook-id`, `-timestamp`, `-signature`), if sent.
    pub webhook: [Option<String>; 3],
    /// What the listener answered.
    pub status: u16,
}

impl Received {
    /// A POST answered 2xx: an event taken.
    pub fn accepted(&self) -> bool {
        self.method == "POST" && (200..300).contains(&self.status)
    }

    pub fn event_id(&self) -> String {
        self.body["eventId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn event_type(&self) -> String {
        self.body["eventType"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The id of the resource the event carries (`event.usage.id` or
    /// `event.usageSpecification.id`).
    pub fn resource_id(&self) -> String {
        let event = &self.body["event"];
        event["usage"]["id"]
            .as_str()
            .or_else(|| event["usageSpecification"]["id"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    down: AtomicBool,
    /// (path prefix, prefix it moved to, 3xx status)
    redirects: Mutex<Vec<(String, String, u16)>>,
    /// (path prefix, how long to wait before answering)
    delays: Mutex<Vec<(String, Duration)>>,
}

pub struct TestListener {
    addr: SocketAddr,
    state: Arc<State>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestListener {
    /// Starts a listener on a random loopback port.
    pub async fn start() -> TestListener {
        let state = Arc::new(State::default());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("the test listener binds");
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .expect("the test listener has an address");
        let mut listener = TestListener {
            addr,
            state,
            server: None,
        };
        listener.serve(acceptor);
        listener
    }

    fn serve(&mut self, acceptor: poem::listener::TcpAcceptor) {
        let state = self.state.clone();
        let endpoint = poem::endpoint::make(move |mut request: Request| {
            let state = state.clone();
            async move {
                let path = request.uri().path().to_string();
                let query = request.uri().query().map(str::to_string);
                let method = request.method().to_string();
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let webhook = ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .map(|name| request.header(name).map(str::to_string));
                let bytes = request.take_body().into_vec().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let redirect = state
                    .redirects
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(from, _, _)| path.starts_with(from.as_str()))
                    .map(|(from, to, status)| (format!("{to}{}", &path[from.len()..]), *status));
                let delay = state
                    .delays
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(prefix, _)| path.starts_with(prefix.as_str()))
                    .map(|(_, delay)| *delay);
                let (status, location) = if let Some((location, status)) = redirect {
                    let status = StatusCode::from_u16(status).expect("a redirect status");
                    (status, Some(location))
                } else if method == "POST" && state.down.load(Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, None)
                } else if method == "POST" {
                    (StatusCode::CREATED, None)
                } else {
                    (StatusCode::OK, None)
                };
                state.received.lock().unwrap().push(Received {
                    method,
                    path,
                    query,
                    authorization,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    body,
                    webhook,
                    status: status.as_u16(),
                });
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let mut response = Response::builder().status(status);
                if let Some(location) = location {
                    response = response.header("location", location);
                }
                response.finish()
            }
        });
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint,
                    async {
                        let _ = rx.await;
                    },
                    Some(Duration::from_millis(50)),
                )
                .await;
        });
        self.server = Some((tx, handle));
    }

    /// `http://127.0.0.1:PORT{path}`: a callback URL on this listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// While down, every POST is answered 503 (and recorded as such).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Answers requests under `from` with `status` (a 3xx) and `Location` under `to`: the
    /// same path after the prefix.
    pub fn redirect(&self, from: &str, to: &str, status: u16) {
        self.state
            .redirects
            .lock()
            .unwrap()
            .push((from.to_string(), to.to_string(), status));
    }

    /// Answers requests under `prefix` only after `delay` (they are recorded on arrival).
    pub fn delay(&self, prefix: &str, delay: Duration) {
        self.state
            .delays
            .lock()
            .unwrap()
            .push((prefix.to_string(), delay));
    }

    /// Stops listening: connections are refused until `restart`.
    pub async fn stop(&mut self) {
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            let _ = handle.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let started = Instant::now();
        let acceptor = loop {
            match TcpListener::bind(self.addr.to_string())
                .into_acceptor()
                .await
            {
                Ok(acceptor) => break acceptor,
                Err(e) if started.elapsed() < Duration::from_secs(5) => {
                    eprintln!("rebinding {}: {e}; retrying", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!(
                    "the test listener cannot listen on {} again: {e}",
                    self.addr
                ),
            }
        };
        self.serve(acceptor);
    }

    /// Every POST so far, in arrival order, whatever was answered.
    pub fn all(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The POSTs answered 2xx whose path starts with `prefix`, in arrival order.
    pub fn accepted(&self, prefix: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.accepted() && r.path.starts_with(prefix))
            .collect()
    }

    /// The POSTs not answered 2xx whose path starts with `prefix`.
    pub fn refused(&self, prefix: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.method == "POST" && !r.accepted() && r.path.starts_with(prefix))
            .collect()
    }

    /// Waits until `done` holds of the accepted POSTs under `prefix`, and answers them;
    /// fails the test after `DEADLINE`, showing what arrived.
    pub async fn wait_for(
        &self,
        prefix: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let accepted = self.accepted(prefix);
            if done(&accepted) {
                return accepted;
            }
            if started.elapsed() > DEADLINE {
                panic!(
                    "waited {DEADLINE:?} for {what} under {prefix}; the listener saw: {:#?}",
                    self.all()
                        .iter()
                        .map(|r| format!(
                            "{} {} {} {}",
                            r.status,
                            r.method,
                            r.path,
                            r.resource_id()
                        ))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `count` POSTs under `prefix` were accepted.
    pub async fn wait_for_count(&self, prefix: &str, count: usize) -> Vec<Received> {
        self.wait_for(prefix, &format!("{count} deliveries"), |r| r.len() >= count)
            .await
    }

    /// Checks that nothing more arrives under `prefix` for a little while (a few delivery
    /// rounds): for asserting an absence once what should have arrived did.
    pub async fn assert_quiet(&self, prefix: &str, expected: usize, grace: Duration) {
        let started = Instant::now();
        while started.elapsed() < grace {
            let accepted = self.accepted(prefix);
            assert!(
                accepted.len() <= expected,
                "{} deliveries under {prefix}, expected {expected}: {:#?}",
                accepted.len(),
                accepted
                    .iter()
                    .map(|r| format!("{} {}", r.path, r.resource_id()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.accepted(prefix).len(), expected, "under {prefix}");
    }
}

impl Drop for TestListener {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.server.take() {
            let _ = tx.send(());
            handle.abort();
        }
    }
}
