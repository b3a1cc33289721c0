//! The callback egress policy: where callbacks may make the server connect, on the
//! address actually connected to. Loopback, link-local, unspecified, multicast and broadcast
//! are refused by default, at registration (400 naming the rule) and at delivery (recorded as
//! `refused by egress policy`); `TMF635_CALLBACK_ALLOW_CIDRS` lifts them,
//! `TMF635_CALLBACK_DENY_CIDRS` adds refusals and wins. Also: redirects only to the same
//! scheme, host and port; callback credentials never shown; delivery errors shown as kinds of
//! failure, not network error text; a cap on the number of subscriptions.
//!
//! The other event suites allow 127.0.0.0/8 (their listeners are on loopback); the servers
//! here start from the defaults.

use crate::backend_tests_with;
use crate::events::{impatient, wait_deliveries};
use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, id_of, json_body, Backend, TestApp};
use crate::listener_server::TestListener;
use reqwest::StatusCode;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{json, Value};
use std::time::Duration;
use tmf635::Config;

/// The default egress policy (nothing allowed beyond it), quick delivery, two attempts.
pub fn by_default(c: &mut Config) {
    impatient(c);
    c.callback_allow_cidrs = Default::default();
}

/// Loopback allowed, v4 and v6, as for a listener on the same machine.
pub fn loopback_allowed(c: &mut Config) {
    impatient(c);
    c.callback_allow_cidrs = "127.0.0.0/8, ::1".parse().expect("CIDRs");
}

/// Loopback allowed but 127.0.0.2, and 10.0.0.0/8 denied.
pub fn some_denied(c: &mut Config) {
    impatient(c);
    c.callback_allow_cidrs = "127.0.0.0/8".parse().expect("CIDRs");
    c.callback_deny_cidrs = "10.0.0.0/8,127.0.0.2".parse().expect("CIDRs");
}

/// The default policy, at most two subscriptions.
pub fn two_subscriptions_at_most(c: &mut Config) {
    by_default(c);
    c.max_subscriptions = 2;
}

/// The ids of the subscriptions on `/hub`.
async fn hub_ids(app: &TestApp) -> Vec<String> {
    let hub = app.read("/hub").await;
    hub.as_array()
        .unwrap_or_else(|| panic!("an array: {hub}"))
        .iter()
        .map(id_of)
        .collect()
}

/// Waits until the only delivery of `subscription` had an attempt; answers it.
async fn first_attempt(app: &TestApp, subscription: &str) -> Value {
    let attempted = |d: &[Value]| d.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1));
    wait_deliveries(app, subscription, None, "an attempt", attempted).await[0].clone()
}

/// Registers `callback` (asserting 201); answers the subscription's id.
async fn register(app: &TestApp, callback: &str) -> String {
    id_of(&app.create("/hub", &json!({"callback": callback})).await)
}

mod by_default {
    use super::*;

    backend_tests_with! {
        crate::egress::by_default;

        async fn callbacks_to_refused_addresses_are_400_naming_the_rule(app) {
            for (callback, rule) in [
                ("http://127.0.0.1:9/hook", "loopback"),
                ("http://127.1.2.3/hook", "loopback"),
                ("http://2130706433/hook", "loopback"),
                ("http://[::1]:9/hook", "loopback"),
                ("http://[::ffff:127.0.0.1]:9/hook", "loopback"),
                ("http://localhost:9/hook", "loopback"),
                ("http://169.254.169.254/latest/meta-data/", "link-local"),
                ("http://[::ffff:169.254.169.254]/", "link-local"),
                ("http://[fe80::1]/hook", "link-local"),
                ("http://0.0.0.0:9/hook", "unspecified"),
                ("http://[::]:9/hook", "unspecified"),
                ("http://224.0.0.1/hook", "multicast"),
                ("http://[ff02::1]/hook", "multicast"),
                ("http://255.255.255.255/hook", "broadcast"),
            ] {
                let message =
                    assert_tmf_error(app.post("/hub", &json!({"callback": callback})).await, 400).await;
                assert!(message.starts_with("callback"), "{callback}: {message}");
                assert!(message.contains(rule), "{callback}: names the rule {rule}: {message}");
                assert!(
                    message.contains("TMF635_CALLBACK_ALLOW_CIDRS"),
                    "{callback}: says how to allow it: {message}"
                );
            }
            assert!(hub_ids(&app).await.is_empty(), "none was registered");
            let message = assert_tmf_error(
                app.post("/hub", &json!({"callback": "http://127.0.0.1:9/"})).await,
                400,
            )
            .await;
            assert_eq!(
                message,
                "callback: http://127.0.0.1:9/ points at a loopback address (127.0.0.1), which \
                 callbacks may not reach (TMF635_CALLBACK_ALLOW_CIDRS allows it)"
            );
        }

        // Subscribers in the same cluster are the common case; a name that does not resolve
        // (yet) is accepted, and resolved again at each delivery.
        async fn private_addresses_and_unresolved_names_are_accepted(app) {
            for callback in [
                "http://10.0.0.7:8080/hook",
                "http://172.16.0.1/hook",
                "http://192.168.1.1/hook",
                "http://[fd00::1]:8080/hook",
                "https://billing.example.com/hook",
                "http://no-such-host.invalid/hook",
            ] {
                register(&app, callback).await;
            }
            assert_eq!(hub_ids(&app).await.len(), 6);
        }

        async fn credentials_in_a_callback_are_never_answered(app) {
            let callback = "http://alice:s3cret@10.0.0.7:8080/hook?token=t0ken#frag";
            let shown = "http://***:***@10.0.0.7:8080/hook?***#***";
            let created = app.create("/hub", &json!({"callback": callback})).await;
            assert_eq!(created["callback"], shown);
            let id = id_of(&created);
            let one = app.get(&format!("/hub/{id}")).await;
            assert_eq!(one.status(), StatusCode::OK);
            let one = one.text().await.expect("a body");
            let all = app.get("/hub").await.text().await.expect("a body");
            for text in [created.to_string(), one.clone(), all.clone()] {
                for secret in ["alice", "s3cret", "t0ken", "frag"] {
                    assert!(!text.contains(secret), "{secret} shown in {text}");
                }
            }
            assert_eq!(serde_json::from_str::<Value>(&one).unwrap()["callback"], shown);
            assert_eq!(serde_json::from_str::<Value>(&all).unwrap()[0]["callback"], shown);
            // Nor in the message of a refusal.
            let message = assert_tmf_error(
                app.post("/hub", &json!({"callback": "http://bob:pa55@127.0.0.1:9/h?key=k3y"})).await,
                400,
            )
            .await;
            assert!(message.contains("http://***:***@127.0.0.1:9/h?***"), "{message}");
            for secret in ["bob", "pa55", "k3y"] {
                assert!(!message.contains(secret), "{secret} shown in {message}");
            }
        }

        async fn a_name_that_does_not_resolve_is_a_dns_failure_at_delivery(app) {
            let id = register(&app, "http://no-such-host.invalid/hook").await;
            app.create("/usage", &usage("DATA", "received")).await;
            let delivery = first_attempt(&app, &id).await;
            assert_eq!(delivery["lastError"], "DNS failure", "{delivery}");
        }
    }
}

mod when_allowed {
    use super::*;

    backend_tests_with! {
        crate::egress::loopback_allowed;

        async fn allowed_loopback_callbacks_are_accepted_and_the_rest_still_refused(app) {
            for callback in ["http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook"] {
                register(&app, callback).await;
            }
            for callback in ["http://169.254.169.254/", "http://0.0.0.0:9/", "http://[fe80::1]/"] {
                assert_tmf_error(app.post("/hub", &json!({"callback": callback})).await, 400).await;
            }
            assert_eq!(hub_ids(&app).await.len(), 3);
        }

        // The answers hide the credentials; the delivery uses them (user and password as
        // Basic authentication, the query as it is).
        async fn deliveries_use_the_credentials_the_answers_hide(app) {
            let listener = TestListener::start().await;
            let callback = format!("http://alice:s3cret@127.0.0.1:{}/cred?token=t0ken", listener.port());
            let created = app.create("/hub", &json!({"callback": callback})).await;
            assert_eq!(
                created["callback"],
                format!("http://***:***@127.0.0.1:{}/cred?***", listener.port())
            );
            app.create("/usage", &usage("DATA", "received")).await;
            let received = listener.wait_for_count("/cred/", 1).await;
            assert_eq!(received[0].query.as_deref(), Some("token=t0ken"));
            // base64("alice:s3cret")
            assert_eq!(received[0].authorization.as_deref(), Some("Basic YWxpY2U6czNjcmV0"));
        }

        // Another port of the same host is another service: a 307 there is not followed.
        async fn a_redirect_to_another_port_is_not_followed(app) {
            let listener = TestListener::start().await;
            let elsewhere = TestListener::start().await;
            let target = format!("http://127.0.0.1:{}/landing/", elsewhere.port());
            listener.redirect("/hop/", &target, 307);
            let id = register(&app, &listener.url("/hop")).await;
            app.create("/usage", &usage("DATA", "received")).await;
            let delivery = first_attempt(&app, &id).await;
            assert_eq!(delivery["lastError"], "redirect not followed (HTTP 307)", "{delivery}");
            assert_ne!(delivery["status"], "delivered", "{delivery}");
            let hops = listener.all();
            assert!(hops.iter().all(|r| r.path.starts_with("/hop/")), "{hops:?}");
            assert!(elsewhere.all().is_empty(), "the other port got {:?}", elsewhere.all());
        }

        // What clients are shown is the kind of failure, never the network error's text.
        async fn delivery_errors_are_kinds_of_failure(app) {
            let slow = TestListener::start().await;
            slow.delay("/slow/", Duration::from_secs(3)); // beyond the 2 s callback timeout
            let down = TestListener::start().await;
            down.set_down(true);
            let closed = {
                let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                socket.local_addr().expect("an address").port()
            };
            let cases = [
                (register(&app, &slow.url("/slow")).await, "timeout"),
                (register(&app, &down.url("/down")).await, "HTTP 503"),
                (register(&app, &format!("http://127.0.0.1:{closed}/closed")).await, "connection refused"),
                // TLS to a listener that speaks plain HTTP.
                (register(&app, &format!("https://127.0.0.1:{}/tls", down.port())).await, "TLS error"),
            ];
            app.create("/usage", &usage("DATA", "received")).await;
            for (id, kind) in cases {
                let delivery = first_attempt(&app, &id).await;
                assert_eq!(delivery["lastError"], kind, "{delivery}");
            }
        }
    }
}

mod with_deny_list {
    use super::*;

    backend_tests_with! {
        crate::egress::some_denied;

        async fn denied_cidrs_are_refused_and_win_over_allowed_ones(app) {
            let message = assert_tmf_error(
                app.post("/hub", &json!({"callback": "http://10.1.2.3:8080/hook"})).await,
                400,
            )
            .await;
            assert!(message.contains("TMF635_CALLBACK_DENY_CIDRS refuses 10.0.0.0/8"), "{message}");
            let message = assert_tmf_error(
                app.post("/hub", &json!({"callback": "http://127.0.0.2:9/hook"})).await,
                400,
            )
            .await;
            assert!(message.contains("TMF635_CALLBACK_DENY_CIDRS refuses 127.0.0.2/32"), "{message}");
            register(&app, "http://127.0.0.1:9/hook").await;
            register(&app, "http://192.168.1.1/hook").await;
            assert_eq!(hub_ids(&app).await.len(), 2);
        }
    }
}

mod capped {
    use super::*;

    backend_tests_with! {
        crate::egress::two_subscriptions_at_most;

        async fn registrations_beyond_the_maximum_are_409(app) {
            let first = register(&app, "http://10.0.0.1/hook").await;
            register(&app, "http://10.0.0.2/hook").await;
            let message = assert_tmf_error(
                app.post("/hub", &json!({"callback": "http://10.0.0.3/hook"})).await,
                409,
            )
            .await;
            assert!(message.contains("at most 2 subscriptions"), "{message}");
            assert!(message.contains("TMF635_MAX_SUBSCRIPTIONS"), "{message}");
            assert_eq!(hub_ids(&app).await.len(), 2);
            let response = app.delete(&format!("/hub/{first}")).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            register(&app, "http://10.0.0.3/hook").await;
        }
    }
}

/// Subscriptions registered under a looser policy (written to the database before this
/// server, on the default policy, starts): one to a loopback address, one to a name that
/// resolves to loopback. Each delivery is refused on the address it would connect to, and
/// recorded as such; nothing reaches the listener.
async fn subscriptions_of_a_looser_policy_are_refused_at_delivery(backend: Backend) {
    let listener = TestListener::start().await;
    let subscriptions = [
        ("literal-hub", listener.url("/literal")),
        (
            "name-hub",
            format!("http://localhost:{}/name", listener.port()),
        ),
    ];
    let stored = subscriptions.clone();
    let prepared = TestApp::spawn_prepared(backend, by_default, |url| async move {
        let db = sea_orm::Database::connect(&url)
            .await
            .expect("the test database");
        <migration::Migrator as migration::MigratorTrait>::up(&db, None)
            .await
            .expect("the migrations");
        for (id, callback) in stored {
            entity::hub::Entity::insert(entity::hub::ActiveModel {
                // The implicit tenant's: the column's default.
                tenant: sea_orm::ActiveValue::NotSet,
                id: Set(id.into()),
                callback: Set(callback),
                query: Set(None),
                created_at: Set(chrono::Utc::now()),
                secret: sea_orm::ActiveValue::NotSet,
            })
            .exec_without_returning(&db)
            .await
            .expect("a subscription");
        }
        db.close().await.expect("closed");
    })
    .await;
    let Some(app) = prepared else { return };
    app.create("/usage", &usage("DATA", "received")).await;
    for (id, _) in &subscriptions {
        let delivery = first_attempt(&app, id).await;
        assert_eq!(
            delivery["lastError"], "refused by egress policy",
            "{id}: {delivery}"
        );
    }
    let dead = |d: &[Value]| d.len() == 1;
    for (id, _) in &subscriptions {
        wait_deliveries(&app, id, Some("dead"), "dead after 2 attempts", dead).await;
    }
    assert!(
        listener.all().is_empty(),
        "the listener got {:?}",
        listener.all()
    );
    // And the stored callbacks are shown as registered (nothing to redact here).
    let hub = json_body(app.get("/hub/literal-hub").await).await;
    assert_eq!(hub["callback"], subscriptions[0].1);
}

mod refused_at_delivery {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        subscriptions_of_a_looser_policy_are_refused_at_delivery(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        subscriptions_of_a_looser_policy_are_refused_at_delivery(Backend::Postgres).await;
    }
}
