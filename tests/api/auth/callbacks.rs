//! Signed callbacks (Standard Webhooks), checked against an independent implementation: the
//! HMAC is computed by Python's `hmac` and `hashlib`, not by the server's code.

use crate::helpers::{assert_tmf_error, TestApp};
use crate::listener_server::TestListener;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the base64 after `whsec_`,
/// computed by Python.
fn python_signature(secret: &str, id: &str, timestamp: &str, body: &str) -> String {
    let script = "import sys,hmac,hashlib,base64\n\
        secret,msg_id,ts=sys.argv[1:4]\n\
        key=base64.b64decode(secret.split('_',1)[1])\n\
        body=sys.stdin.buffer.read()\n\
        mac=hmac.new(key,f'{msg_id}.{ts}.'.encode()+body,hashlib.sha256).digest()\n\
        print('v1,'+base64.b64encode(mac).decode())";
    let mut child = Command::new("python3")
        .args(["-c", script, secret, id, timestamp])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("a stdin")
        .write_all(body.as_bytes())
        .expect("the body is written");
    let output = child.wait_with_output().expect("python3 ends");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

crate::backend_tests! {
    async fn callbacks_carry_a_standard_webhooks_signature(app) {
        let listener = TestListener::start().await;
        let registered = app.create("/hub", &json!({"callback": listener.url("/signed")})).await;
        let secret = registered["secret"].as_str().expect("the secret is answered once").to_string();
        assert!(secret.starts_with("whsec_"));
        let id = registered["id"].as_str().unwrap();
        let read: Value = app.get(&format!("/hub/{id}")).await.json().await.unwrap();
        assert!(read.get("secret").is_none(), "the secret is never answered again: {read}");

        app.create("/usage", &crate::fixtures::voice_usage()).await;
        let received = listener.wait_for_count("/signed", 1).await;
        let [Some(msg_id), Some(timestamp), Some(signature)] = received[0].webhook.clone() else {
            panic!("unsigned callback: {:?}", received[0].webhook);
        };
        assert_eq!(msg_id, received[0].event_id());
        let sent: i64 = timestamp.parse().unwrap();
        assert!((crate::auth::now() - sent).abs() < 60, "timestamp {sent}");
        assert_eq!(signature, python_signature(&secret, &msg_id, &timestamp, &received[0].text));
    }
}

mod verifying_listener {
    use super::*;

    const UPSTREAM_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    async fn post(app: &TestApp, body: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = app
            .client
            .post(app.url("/listener/usageCreateEvent"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("the server answers")
    }

    fn signed(body: &str, timestamp: i64) -> Vec<(&'static str, String)> {
        let timestamp = timestamp.to_string();
        let signature = python_signature(UPSTREAM_SECRET, "evt-1", &timestamp, body);
        vec![
            ("webhook-id", "evt-1".into()),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ]
    }

    crate::backend_tests_with! {
        |config: &mut tmf635::Config| config.listener_secret = Some(UPSTREAM_SECRET.parse().unwrap());
        async fn listener_takes_only_fresh_signed_events(app) {
            let mut usage = crate::fixtures::voice_usage();
            usage["id"] = json!("u-1");
            usage["href"] = json!("https://upstream.example.com/tmf-api/usageManagement/v4/usage/u-1");
            let body = json!({
                "eventId": "evt-1", "eventTime": "2024-05-01T10:00:00Z",
                "eventType": "UsageCreateEvent", "event": {"usage": usage}
            })
            .to_string();
            assert_tmf_error(post(&app, &body, &[]).await, 401).await;
            assert_tmf_error(post(&app, &body, &signed(&body, crate::auth::now() - 600)).await, 401).await;
            let mut forged = signed(&body, crate::auth::now());
            forged[2].1 = signed("{}", crate::auth::now())[2].1.clone();
            assert_tmf_error(post(&app, &body, &forged).await, 401).await;
            let response = post(&app, &body, &signed(&body, crate::auth::now())).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let received: Value = app.get("/listener/event").await.json().await.unwrap();
            assert_eq!(received.as_array().map(Vec::len), Some(1), "{received}");
        }
    }
}
