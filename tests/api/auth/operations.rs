//! Every operation: 401 without credentials or with a token that does not check out, 403
//! without its scope, through with it; the docs stay open.

use super::*;
use crate::helpers::{assert_tmf_error, TestApp};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;

async fn send(
    app: &TestApp,
    method: &reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

/// `header.payload.` with `{"alg":"none"}`: an unsigned token.
fn unsigned(claims: &Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "JWT"})),
        part(claims)
    )
}

crate::backend_tests_with! { hs256_config;
    async fn every_operation_needs_credentials(app) {
        for (method, path, _) in operations() {
            let response = send(&app, &method, &path, None).await;
            let challenge = response.headers().get("www-authenticate").cloned();
            assert_tmf_error(response, 401).await;
            let challenge = challenge.unwrap_or_else(|| panic!("{method} {path}: no challenge"));
            assert!(challenge.to_str().unwrap().starts_with("Bearer"), "{method} {path}");
        }
        for open in ["/openapi.json", "/openapi.yaml", "/swagger-ui/"] {
            let response = app.client.get(format!("{}{open}", app.root)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{open}");
        }
    }

    async fn every_operation_needs_its_scope(app) {
        for (method, path, scope) in operations() {
            let others: Vec<&str> = ALL_SCOPES.split(' ').filter(|s| *s != scope).collect();
            let token = hs256(&claims(&others.join(" ")));
            let response = send(&app, &method, &path, Some(&token)).await;
            let message = assert_tmf_error(response, 403).await;
            assert!(message.contains(&scope), "{method} {path}: {message}");
            // With the scope it gets past authentication (whatever the operation answers).
            let token = hs256(&claims(&scope));
            let status = send(&app, &method, &path, Some(&token)).await.status();
            assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{method} {path}: {status}");
        }
    }

    async fn scopes_come_from_scope_or_scp(app) {
        let mut from_scp = claims("");
        from_scp["scp"] = json!(["usage.write", "usage.read"]);
        let token = hs256(&from_scp);
        let created = app.client.post(app.url("/usage")).bearer_auth(&token)
            .json(&crate::fixtures::voice_usage()).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let listed = app.client.get(app.url("/usage")).bearer_auth(hs256(&claims("usage.read")))
            .send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
    }

    async fn tokens_that_do_not_check_out_are_refused(app) {
        let good = claims("usage.read");
        let with = |key: &str, value: Value| {
            let mut c = good.clone();
            c[key] = value;
            c
        };
        let wrong_key = EncodingKey::from_secret(b"another-secret-of-thirty-two-bytes!!");
        let cases = [
            ("expired", hs256(&with("exp", json!(now() - 120)))),
            ("not yet valid", hs256(&with("nbf", json!(now() + 120)))),
            ("wrong issuer", hs256(&with("iss", json!("https://other.test")))),
            ("wrong audience", hs256(&with("aud", json!("someone-else")))),
            ("no exp", hs256(&{ let mut c = good.clone(); c.as_object_mut().unwrap().remove("exp"); c })),
            ("wrongly signed", sign(&good, Header::default(), &wrong_key)),
            ("alg none", unsigned(&good)),
            ("RS256 without a JWKS", signed_with("rsa1.pem", Algorithm::RS256, "rsa1", &good)),
            ("garbage", "not.a.token".to_string()),
            ("unknown API key", "tmf635_nothing".to_string()),
        ];
        for (what, token) in cases {
            let response = send(&app, &reqwest::Method::GET, "/usage", Some(&token)).await;
            assert!(response.headers().contains_key("www-authenticate"), "{what}");
            let message = assert_tmf_error(response, 401).await;
            println!("{what}: {message}");
        }
        // Within the leeway, a token just expired still passes.
        let just_expired = hs256(&with("exp", json!(now() - 5)));
        let response = send(&app, &reqwest::Method::GET, "/usage", Some(&just_expired)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
