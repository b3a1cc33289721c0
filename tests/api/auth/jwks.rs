//! RS256 and ES256 tokens against a JWKS: from a file, and from a loopback HTTP server whose
//! keys rotate (the new key is fetched on its first token, the old one is refused after).

use super::*;
use crate::helpers::{Backend, TestApp};
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/usage"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers")
        .status()
}

/// Serves the JSON in `keys` at `/jwks.json` on a loopback port; answers its URL.
async fn jwks_server(keys: Arc<Mutex<String>>) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("the JWKS server binds");
    let addr = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .expect("an address");
    let endpoint = poem::Route::new().at(
        "/jwks.json",
        poem::endpoint::make_sync(move |_| {
            poem::Response::builder()
                .content_type("application/json")
                .body(keys.lock().unwrap().clone())
        }),
    );
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(endpoint));
    format!("http://{addr}/jwks.json")
}

fn read_keys(file: &str) -> String {
    std::fs::read_to_string(key_file(file)).expect("the key set is there")
}

async fn from_file(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |config| {
        config.auth_jwks = Some(key_file("jwks-file.json"));
        config.auth_issuer = Some(ISSUER.into());
    })
    .await
    else {
        return;
    };
    let good = claims("usage.read");
    let rs256 = signed_with("rsa1.pem", Algorithm::RS256, "rsa1", &good);
    assert_eq!(status_with(&app, &rs256).await, StatusCode::OK);
    let es256 = signed_with("ec1.pem", Algorithm::ES256, "ec1", &good);
    assert_eq!(status_with(&app, &es256).await, StatusCode::OK);
    // A key the set does not hold, under a kid it does or does not know.
    let impostor = signed_with("rsa2.pem", Algorithm::RS256, "rsa1", &good);
    assert_eq!(status_with(&app, &impostor).await, StatusCode::UNAUTHORIZED);
    let unknown = signed_with("rsa2.pem", Algorithm::RS256, "rsa2", &good);
    assert_eq!(status_with(&app, &unknown).await, StatusCode::UNAUTHORIZED);
    // HS256 is not configured here: refused, whatever its secret.
    assert_eq!(
        status_with(&app, &hs256(&good)).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn from_http_with_rotation(backend: Backend) {
    let keys = Arc::new(Mutex::new(read_keys("jwks-rsa1.json")));
    let url = jwks_server(keys.clone()).await;
    let Some(app) = TestApp::spawn_with(backend, |config| {
        config.auth_jwks = Some(url);
        config.auth_audience = Some(AUDIENCE.into());
    })
    .await
    else {
        return;
    };
    let good = claims("usage.read");
    let old = signed_with("rsa1.pem", Algorithm::RS256, "rsa1", &good);
    let new = signed_with("rsa2.pem", Algorithm::RS256, "rsa2", &good);
    assert_eq!(status_with(&app, &old).await, StatusCode::OK);
    *keys.lock().unwrap() = read_keys("jwks-rsa2.json");
    // The set is fetched again on an unknown kid once the minimum interval has passed.
    tokio::time::sleep(tmf635::auth::jwks::MIN_REFETCH + std::time::Duration::from_millis(200))
        .await;
    assert_eq!(status_with(&app, &new).await, StatusCode::OK);
    assert_eq!(status_with(&app, &old).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sqlite_jwks_from_file() {
    from_file(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_jwks_from_file() {
    from_file(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_jwks_from_http_with_rotation() {
    from_http_with_rotation(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_jwks_from_http_with_rotation() {
    from_http_with_rotation(Backend::Postgres).await;
}
