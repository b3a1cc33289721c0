//! Event delivery end to end: subscriptions on `/hub`, a real HTTP listener on loopback
//! (`listener_server`), and what arrives there: the seven event types with their payloads,
//! query filtering, unsubscribing, retries while the listener is down, dead letters and
//! redrive, and no event for a change that did not happen.

use crate::backend_tests_with;
use crate::fixtures::{specification, usage, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body, TestApp};
use crate::listener_server::{Received, TestListener, DEADLINE};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tmf635::Config;

/// Quick delivery: the queue is looked at every 20 ms, retries after 50 ms up to 200 ms.
pub fn fast(c: &mut Config) {
    c.delivery_poll_ms = 20;
    c.delivery_backoff_ms = 50;
    c.delivery_backoff_max_ms = 200;
    c.callback_timeout_ms = 2_000;
}

/// `fast`, retrying (nearly) forever: for a listener that is down for a while.
pub fn patient(c: &mut Config) {
    fast(c);
    c.delivery_max_attempts = 10_000;
}

/// `fast`, giving up after two attempts.
pub fn impatient(c: &mut Config) {
    fast(c);
    c.delivery_max_attempts = 2;
}

/// `fast`, with callbacks allowed to example.com only.
pub fn example_com_only(c: &mut Config) {
    fast(c);
    c.callback_allowed_hosts = vec!["example.com".into()];
}

/// Registers `{listener}/{name}` with `query`; answers the subscription's id.
async fn subscribe(
    app: &TestApp,
    listener: &TestListener,
    name: &str,
    query: Option<&str>,
) -> String {
    let mut body = json!({"callback": listener.url(&format!("/{name}"))});
    if let Some(query) = query {
        body["query"] = json!(query);
    }
    let subscription = app.create("/hub", &body).await;
    assert_eq!(subscription["callback"], body["callback"]);
    id_of(&subscription)
}

/// The path prefix of what is delivered to the subscription registered as `name`.
fn under(name: &str) -> String {
    format!("/{name}/")
}

/// `usageCreateEvent` for `UsageCreateEvent`: the listener operation of an event type.
fn listener_name(event_type: &str) -> String {
    let mut name = event_type.to_string();
    name[..1].make_ascii_lowercase();
    name
}

/// The deliveries of a subscription (`GET /hub/{id}/delivery`, an extension), newest first.
async fn deliveries(app: &TestApp, subscription: &str, status: Option<&str>) -> Vec<Value> {
    let path = match status {
        Some(status) => format!("/hub/{subscription}/delivery?status={status}"),
        None => format!("/hub/{subscription}/delivery"),
    };
    let response = app.get(&path).await;
    let code = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(code, StatusCode::OK, "GET {path}: {body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    body.as_array()
        .unwrap_or_else(|| panic!("GET {path} answers an array, not {body}"))
        .clone()
}

/// Polls the deliveries of a subscription until `done` holds of them; fails after DEADLINE.
pub(crate) async fn wait_deliveries(
    app: &TestApp,
    subscription: &str,
    status: Option<&str>,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = deliveries(app, subscription, status).await;
        if done(&found) {
            return found;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}; deliveries: {:#?}",
            deliveries(app, subscription, None).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /hub/{id}/redrive` (an extension), without a body.
async fn redrive(app: &TestApp, subscription: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/hub/{subscription}/redrive")))
        .send()
        .await
        .expect("POST /hub/{id}/redrive answers")
}

/// Checks one delivered event: the listener path of its type under `name`, the TMF event
/// envelope (eventId, eventTime within the test, eventType) and the resource it carries.
fn assert_event(
    received: &Received,
    name: &str,
    event_type: &str,
    resource_key: &str,
    resource: &Value,
    since: DateTime<Utc>,
) {
    let body = &received.body;
    assert_eq!(
        received.path,
        format!("/{name}/listener/{}", listener_name(event_type)),
        "the listener path of {body}"
    );
    assert_eq!(body["eventType"], event_type, "{body}");
    let event_id = body["eventId"]
        .as_str()
        .unwrap_or_else(|| panic!("eventId is a string in {body}"));
    assert!(!event_id.is_empty(), "eventId is not empty in {body}");
    let time = body["eventTime"]
        .as_str()
        .unwrap_or_else(|| panic!("eventTime is a string in {body}"));
    let time = DateTime::parse_from_rfc3339(time)
        .unwrap_or_else(|e| panic!("eventTime {time} is a date-time ({e})"))
        .with_timezone(&Utc);
    assert!(
        time >= since - chrono::Duration::seconds(1) && time <= Utc::now(),
        "eventTime {time} is the time of the change (after {since})"
    );
    let event = body["event"]
        .as_object()
        .unwrap_or_else(|| panic!("event is an object in {body}"));
    assert_eq!(
        event.keys().collect::<Vec<_>>(),
        vec![resource_key],
        "the event carries the {resource_key} only: {body}"
    );
    assert_eq!(
        &event[resource_key], resource,
        "the {event_type} carries the resource as the API answered it"
    );
}

/// The (eventType, resource id) of each delivery, in arrival order.
fn summary(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .map(|r| (r.event_type(), r.resource_id()))
        .collect()
}

fn pair(event_type: &str, id: &str) -> (String, String) {
    (event_type.to_string(), id.to_string())
}

/// Asserts every event id is delivered once.
fn assert_each_once(received: &[Received]) {
    let mut seen = HashMap::new();
    for r in received {
        *seen.entry(r.event_id()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events delivered more than once: {twice:?}"
    );
}

/// A usage of `usage_type` whose related parties are `parties`.
fn usage_of(usage_type: &str, parties: &[&str]) -> Value {
    let mut body = usage(usage_type, "received");
    body["relatedParty"] = parties
        .iter()
        .map(|id| json!({"id": id, "role": "customer", "@referredType": "Individual"}))
        .collect();
    body
}

mod delivery {
    use super::*;

    backend_tests_with! {
        crate::events::fast;

        async fn each_event_type_arrives_at_its_listener_with_the_resource(app) {
            let listener = TestListener::start().await;
            let since = Utc::now();
            subscribe(&app, &listener, "all", None).await;

            // UsageSpecification: create, change, delete.
            let spec = app
                .create("/usageSpecification", &specification("DataSpec", "active"))
                .await;
            let spec_path = format!("/usageSpecification/{}", id_of(&spec));
            let changed_spec = app
                .patch_ok(&spec_path, &json!({"description": "Data usages, per MB"}))
                .await;
            assert_eq!(app.delete(&spec_path).await.status(), StatusCode::NO_CONTENT);

            // Usage: create, state change, attribute change, delete.
            let created = app.create("/usage", &usage("VOICE", "received")).await;
            let usage_path = format!("/usage/{}", id_of(&created));
            let rated = app.patch_ok(&usage_path, &json!({"status": "rated"})).await;
            let described = app
                .patch_ok(&usage_path, &json!({"description": "a longer call"}))
                .await;
            assert_eq!(app.delete(&usage_path).await.status(), StatusCode::NO_CONTENT);

            let received = listener.wait_for_count(&under("all"), 7).await;
            assert_eq!(received.len(), 7, "{:?}", summary(&received));
            let spec_key = "usageSpecification";
            assert_event(&received[0], "all", "UsageSpecificationCreateEvent", spec_key, &spec, since);
            assert_event(
                &received[1],
                "all",
                "UsageSpecificationAttributeValueChangeEvent",
                spec_key,
                &changed_spec,
                since,
            );
            assert_event(&received[2], "all", "UsageSpecificationDeleteEvent", spec_key, &changed_spec, since);
            assert_event(&received[3], "all", "UsageCreateEvent", "usage", &created, since);
            assert_event(&received[4], "all", "UsageStateChangeEvent", "usage", &rated, since);
            assert_event(&received[5], "all", "UsageAttributeValueChangeEvent", "usage", &described, since);
            assert_event(&received[6], "all", "UsageDeleteEvent", "usage", &described, since);

            // An attribute value change names what changed; a state change needs no fieldPath.
            let spec_fields: BTreeSet<&str> = received[1].body["fieldPath"]
                .as_str()
                .unwrap_or_else(|| panic!("fieldPath is a string in {}", received[1].body))
                .split(',')
                .collect();
            assert!(spec_fields.contains("description"), "{spec_fields:?}");
            assert!(!spec_fields.contains("name"), "{spec_fields:?}");
            assert_eq!(received[5].body["fieldPath"], "description");
            assert!(received[4].body.get("fieldPath").is_none(), "{}", received[4].body);
            assert_eq!(received[4].body["event"]["usage"]["status"], "rated");

            // Seven events, seven ids; and nothing more comes.
            let ids: BTreeSet<String> = received.iter().map(Received::event_id).collect();
            assert_eq!(ids.len(), 7, "each event has its own eventId");
            listener.assert_quiet(&under("all"), 7, Duration::from_millis(300)).await;
        }

        async fn delivered_events_are_accepted_by_a_tmf635_listener(app) {
            // The server's own /listener validates each event against the TMF635 schemas.
            let subscription = app.create("/hub", &json!({"callback": app.base})).await;
            let spec = app.create("/usageSpecification", &specification("S", "active")).await;
            let spec_path = format!("/usageSpecification/{}", id_of(&spec));
            app.patch_ok(&spec_path, &json!({"version": "2.0"})).await;
            assert_eq!(app.delete(&spec_path).await.status(), StatusCode::NO_CONTENT);
            let created = app.create("/usage", &voice_usage()).await;
            let usage_path = format!("/usage/{}", id_of(&created));
            app.patch_ok(&usage_path, &json!({"status": "billed", "description": "billed call"}))
                .await;
            assert_eq!(app.delete(&usage_path).await.status(), StatusCode::NO_CONTENT);
            let id = id_of(&subscription);
            let delivered = wait_deliveries(&app, &id, Some("delivered"), "7 delivered", |d| {
                d.len() >= 7
            })
            .await;
            assert_eq!(delivered.len(), 7);
            let kept = app.list("/listener/event?limit=100").await;
            assert_eq!(kept.total, 7, "{:#?}", kept.items);
            let mut types: Vec<String> = kept
                .items
                .iter()
                .map(|e| e["eventType"].as_str().unwrap_or_default().to_string())
                .collect();
            types.sort();
            assert_eq!(
                types,
                [
                    "UsageAttributeValueChangeEvent",
                    "UsageCreateEvent",
                    "UsageDeleteEvent",
                    "UsageSpecificationAttributeValueChangeEvent",
                    "UsageSpecificationCreateEvent",
                    "UsageSpecificationDeleteEvent",
                    "UsageStateChangeEvent",
                ]
            );
            assert!(deliveries(&app, &id, Some("pending")).await.is_empty());
            assert!(deliveries(&app, &id, Some("dead")).await.is_empty());
        }

        async fn deliveries_are_recorded_once_delivered(app) {
            let listener = TestListener::start().await;
            let id = subscribe(&app, &listener, "rec", None).await;
            let a = app.create("/usage", &usage("DATA", "received")).await;
            let b = app.create("/usage", &usage("SMS", "received")).await;
            let received = listener.wait_for_count(&under("rec"), 2).await;
            let delivered = wait_deliveries(&app, &id, Some("delivered"), "2 delivered", |d| {
                d.len() == 2
            })
            .await;
            // Newest first; one attempt each; the ids of the events that arrived.
            let event_ids: Vec<String> = received.iter().rev().map(Received::event_id).collect();
            let listed: Vec<String> = delivered
                .iter()
                .map(|d| d["eventId"].as_str().unwrap_or_default().to_string())
                .collect();
            assert_eq!(listed, event_ids);
            for d in &delivered {
                assert_eq!(d["status"], "delivered", "{d}");
                assert_eq!(d["eventType"], "UsageCreateEvent", "{d}");
                assert_eq!(d["attempts"], 1, "{d}");
                assert!(d["deliveredAt"].is_string(), "{d}");
                assert!(d.get("lastError").is_none_or(Value::is_null), "{d}");
            }
            assert_eq!(
                summary(&received),
                vec![
                    pair("UsageCreateEvent", &id_of(&a)),
                    pair("UsageCreateEvent", &id_of(&b)),
                ]
            );
            assert_tmf_error(app.get(&format!("/hub/{id}/delivery?status=gone")).await, 400).await;
            assert_tmf_error(app.get("/hub/no-such-hub/delivery").await, 404).await;
        }

        async fn queries_select_the_events_a_subscription_gets(app) {
            let listener = TestListener::start().await;
            subscribe(&app, &listener, "types", Some("eventType=UsageCreateEvent,UsageDeleteEvent")).await;
            subscribe(&app, &listener, "voice", Some("event.usage.usageType=VOICE")).await;
            subscribe(&app, &listener, "party", Some("event.usage.relatedParty.id=cust-42")).await;
            subscribe(&app, &listener, "spec", Some("event.usageSpecification.name=VOICE")).await;
            subscribe(
                &app,
                &listener,
                "voice-created",
                Some("eventType=UsageCreateEvent&event.usage.usageType=VOICE"),
            )
            .await;
            subscribe(&app, &listener, "all", None).await;

            let a = id_of(&app.create("/usage", &usage_of("DATA", &["cust-1"])).await);
            let b = id_of(&app.create("/usage", &usage_of("VOICE", &["cust-1"])).await);
            app.patch_ok(&format!("/usage/{b}"), &json!({"status": "rated"})).await;
            let c = id_of(&app.create("/usage", &usage_of("SMS", &["cust-7", "cust-42"])).await);
            app.patch_ok(&format!("/usage/{c}"), &json!({"description": "SMS to 42"})).await;
            assert_eq!(app.delete(&format!("/usage/{a}")).await.status(), StatusCode::NO_CONTENT);
            let s = id_of(&app.create("/usageSpecification", &specification("VOICE", "active")).await);
            // Matches every query, and comes last: once it is in, everything before it is.
            let marker = id_of(&app.create("/usage", &usage_of("VOICE", &["cust-42"])).await);

            let create = "UsageCreateEvent";
            let expected = [
                (
                    "types",
                    vec![
                        pair(create, &a),
                        pair(create, &b),
                        pair(create, &c),
                        pair("UsageDeleteEvent", &a),
                        pair(create, &marker),
                    ],
                ),
                (
                    "voice",
                    vec![
                        pair(create, &b),
                        pair("UsageStateChangeEvent", &b),
                        pair(create, &marker),
                    ],
                ),
                (
                    "party",
                    vec![
                        pair(create, &c),
                        pair("UsageAttributeValueChangeEvent", &c),
                        pair(create, &marker),
                    ],
                ),
                ("voice-created", vec![pair(create, &b), pair(create, &marker)]),
                (
                    "all",
                    vec![
                        pair(create, &a),
                        pair(create, &b),
                        pair("UsageStateChangeEvent", &b),
                        pair(create, &c),
                        pair("UsageAttributeValueChangeEvent", &c),
                        pair("UsageDeleteEvent", &a),
                        pair("UsageSpecificationCreateEvent", &s),
                        pair(create, &marker),
                    ],
                ),
            ];
            for (name, events) in expected {
                let received = listener
                    .wait_for(&under(name), "the marker", |r| {
                        r.iter().any(|r| r.resource_id() == marker)
                    })
                    .await;
                assert_eq!(summary(&received), events, "what {name} received");
            }
            // The specification subscription gets the specification's event and nothing else.
            let received = listener.wait_for_count(&under("spec"), 1).await;
            assert_eq!(summary(&received), vec![pair("UsageSpecificationCreateEvent", &s)]);
            listener.assert_quiet(&under("spec"), 1, Duration::from_millis(300)).await;
        }

        async fn a_malformed_query_or_callback_is_400_and_registers_nothing(app) {
            for query in [
                "eventType=NoSuchEvent",
                "eventType=UsageCreateEvent,UsageUpdateEvent",
                "event.usage.noSuchAttribute=1",
                "event.usage.relatedParty.nope=1",
                "event.usageSpecification.nope=1",
                "event.party.id=1",
                "noSuchAttribute=x",
            ] {
                let body = json!({"callback": "http://127.0.0.1:9/hook", "query": query});
                let message = assert_tmf_error(app.post("/hub", &body).await, 400).await;
                assert!(!message.is_empty(), "{query}");
            }
            for callback in ["ftp://127.0.0.1/hook", "file:///tmp/hook", "127.0.0.1:9/hook", "mailto:a@b.c"] {
                let body = json!({"callback": callback, "query": "eventType=UsageCreateEvent"});
                assert_tmf_error(app.post("/hub", &body).await, 400).await;
            }
            let hub = app.read("/hub").await;
            assert_eq!(hub, json!([]), "nothing was registered");
        }

        async fn the_hub_lists_and_reads_subscriptions_and_unregistering_stops_delivery(app) {
            let listener = TestListener::start().await;
            let gone = subscribe(&app, &listener, "gone", Some("eventType=UsageCreateEvent")).await;
            let kept = subscribe(&app, &listener, "kept", None).await;

            let hub = app.read("/hub").await;
            let mut listed: Vec<(String, String)> = hub
                .as_array()
                .unwrap_or_else(|| panic!("GET /hub answers an array: {hub}"))
                .iter()
                .map(|s| (id_of(s), s["callback"].as_str().unwrap_or_default().to_string()))
                .collect();
            listed.sort();
            let mut expected = vec![
                (gone.clone(), listener.url("/gone")),
                (kept.clone(), listener.url("/kept")),
            ];
            expected.sort();
            assert_eq!(listed, expected);
            let read = app.read(&format!("/hub/{gone}")).await;
            assert_eq!(
                read,
                json!({"id": gone, "callback": listener.url("/gone"), "query": "eventType=UsageCreateEvent"})
            );

            let first = id_of(&app.create("/usage", &usage("DATA", "received")).await);
            listener.wait_for_count(&under("gone"), 1).await;
            listener.wait_for_count(&under("kept"), 1).await;

            let response = app.delete(&format!("/hub/{gone}")).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            assert_tmf_error(app.get(&format!("/hub/{gone}")).await, 404).await;
            let hub = app.read("/hub").await;
            assert_eq!(hub.as_array().map(|a| a.iter().map(id_of).collect::<Vec<_>>()), Some(vec![kept.clone()]));

            let second = id_of(&app.create("/usage", &usage("DATA", "received")).await);
            let third = id_of(&app.create("/usage", &usage("VOICE", "received")).await);
            let received = listener.wait_for_count(&under("kept"), 3).await;
            assert_eq!(
                summary(&received),
                vec![
                    pair("UsageCreateEvent", &first),
                    pair("UsageCreateEvent", &second),
                    pair("UsageCreateEvent", &third),
                ]
            );
            // The other subscription got its events in the same rounds; the removed one
            // gets nothing more.
            listener.assert_quiet(&under("gone"), 1, Duration::from_millis(300)).await;
            assert_eq!(summary(&listener.accepted(&under("gone"))), vec![pair("UsageCreateEvent", &first)]);
            assert_tmf_error(app.get(&format!("/hub/{gone}/delivery")).await, 404).await;
        }

        async fn a_refused_change_announces_nothing(app) {
            let listener = TestListener::start().await;
            let id = subscribe(&app, &listener, "all", None).await;
            let created = app.create("/usage", &usage("DATA", "received")).await;
            let path = format!("/usage/{}", id_of(&created));

            // Refused: invalid bodies, a patch of the id, stale If-Match, unknown ids.
            assert_tmf_error(app.post("/usage", &json!({"status": "nope"})).await, 400).await;
            assert_tmf_error(app.post("/usage", &json!({"relatedParty": [{"role": "x"}]})).await, 400).await;
            assert_tmf_error(
                app.post("/usageSpecification", &json!({"isBundle": "no"})).await,
                400,
            )
            .await;
            assert_tmf_error(app.patch(&path, &json!({"status": "nope"})).await, 400).await;
            assert_tmf_error(app.patch(&path, &json!({"id": "other"})).await, 422).await;
            let stale = app
                .client
                .patch(app.url(&path))
                .header("if-match", "\"99\"")
                .json(&json!({"status": "rated"}))
                .send()
                .await
                .unwrap();
            assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
            let stale = app
                .client
                .delete(app.url(&path))
                .header("if-match", "\"99\"")
                .send()
                .await
                .unwrap();
            assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
            assert_tmf_error(app.delete("/usage/no-such-usage").await, 404).await;
            // A patch that changes nothing announces nothing either.
            app.patch_ok(&path, &json!({"status": "received"})).await;
            assert_eq!(app.read(&path).await, created);

            let marker = id_of(&app.create("/usage", &usage("VOICE", "received")).await);
            let received = listener
                .wait_for(&under("all"), "the marker", |r| r.iter().any(|r| r.resource_id() == marker))
                .await;
            assert_eq!(
                summary(&received),
                vec![
                    pair("UsageCreateEvent", &id_of(&created)),
                    pair("UsageCreateEvent", &marker),
                ]
            );
            assert_eq!(deliveries(&app, &id, None).await.len(), 2);
        }

        async fn a_patch_of_the_status_and_another_attribute_announces_both(app) {
            let listener = TestListener::start().await;
            let since = Utc::now();
            subscribe(&app, &listener, "both", None).await;
            let created = app.create("/usage", &voice_usage()).await;
            let patched = app
                .patch_ok(
                    &format!("/usage/{}", id_of(&created)),
                    &json!({"status": "billed", "description": "billed call", "roamingZone": "US"}),
                )
                .await;
            let received = listener.wait_for_count(&under("both"), 3).await;
            assert_event(&received[0], "both", "UsageCreateEvent", "usage", &created, since);
            assert_event(&received[1], "both", "UsageStateChangeEvent", "usage", &patched, since);
            assert_event(&received[2], "both", "UsageAttributeValueChangeEvent", "usage", &patched, since);
            let fields: BTreeSet<&str> = received[2].body["fieldPath"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .collect();
            assert_eq!(
                fields,
                BTreeSet::from(["description", "roamingZone"]),
                "the changed attributes, not the status"
            );
            listener.assert_quiet(&under("both"), 3, Duration::from_millis(300)).await;
        }

        async fn racing_patches_announce_each_applied_change_once(app) {
            let listener = TestListener::start().await;
            subscribe(&app, &listener, "races", None).await;
            let created = app.create("/usage", &voice_usage()).await;
            let path = format!("/usage/{}", id_of(&created));
            // The writers read the same revision at once, so most lose a race and retry on a
            // fresh read; an attempt that lost must announce nothing.
            let patches: Vec<Value> = (0..8).map(|i| json!({format!("extension{i}"): i})).collect();
            let answers =
                crate::helpers::join_all(patches.iter().map(|p| app.patch(&path, p))).await;
            let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
            assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
            let received = listener.wait_for_count(&under("races"), 9).await;
            let fields: BTreeSet<String> = received
                .iter()
                .filter(|r| r.event_type() == "UsageAttributeValueChangeEvent")
                .map(|r| r.body["fieldPath"].as_str().unwrap_or_default().to_string())
                .collect();
            let expected: BTreeSet<String> = (0..8).map(|i| format!("extension{i}")).collect();
            assert_eq!(fields, expected, "one event per applied change: {:?}", summary(&received));
            listener.assert_quiet(&under("races"), 9, Duration::from_millis(300)).await;
        }

        async fn a_callback_with_a_trailing_slash_gets_one_slash(app) {
            let listener = TestListener::start().await;
            app.create("/hub", &json!({"callback": listener.url("/slash/")})).await;
            let created = app.create("/usage", &usage("DATA", "received")).await;
            let received = listener.wait_for_count(&under("slash"), 1).await;
            assert_eq!(received[0].path, "/slash/listener/usageCreateEvent");
            assert_eq!(received[0].resource_id(), id_of(&created));
        }

        async fn a_same_host_307_redirect_is_followed_with_the_event(app) {
            let listener = TestListener::start().await;
            listener.redirect("/old/", "/new/", 307);
            let id = subscribe(&app, &listener, "old", None).await;
            let created = app.create("/usage", &usage("DATA", "received")).await;
            let received = listener.wait_for_count(&under("new"), 1).await;
            assert_eq!(received[0].path, "/new/listener/usageCreateEvent");
            assert_eq!(received[0].body["event"]["usage"], created);
            let delivered =
                wait_deliveries(&app, &id, Some("delivered"), "1 delivered", |d| d.len() == 1).await;
            assert_eq!(delivered[0]["attempts"], 1);
        }

        // The listener path is joined to the callback's path; its query string is kept.
        async fn a_callback_with_a_query_string_keeps_it(app) {
            let listener = TestListener::start().await;
            app.create("/hub", &json!({"callback": listener.url("/q?token=abc")}))
                .await;
            app.create("/usage", &usage("DATA", "received")).await;
            let started = Instant::now();
            while listener.all().is_empty() && started.elapsed() < Duration::from_secs(15) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let all = listener.all();
            assert!(!all.is_empty(), "something arrived");
            assert_eq!(
                (all[0].path.as_str(), all[0].query.as_deref()),
                ("/q/listener/usageCreateEvent", Some("token=abc")),
                "{:?}",
                all[0]
            );
        }

        // A 301/302/303 would turn the POST into a bodiless GET: either the event reaches the
        // listener with its body, or the attempt does not count as delivered.
        async fn a_delivery_redirected_by_302_is_not_lost(app) {
            let listener = TestListener::start().await;
            listener.redirect("/moved/", "/landing/", 302);
            let subscription = app
                .create("/hub", &json!({"callback": listener.url("/moved")}))
                .await;
            let id = id_of(&subscription);
            let created = app.create("/usage", &usage("DATA", "received")).await;
            // Wait until the first attempt is over, whatever its outcome.
            let started = Instant::now();
            let deliveries = loop {
                let response = app.get(&format!("/hub/{id}/delivery")).await;
                assert_eq!(response.status(), StatusCode::OK);
                let deliveries: Value = json_body(response).await;
                if deliveries[0]["attempts"].as_i64().unwrap_or(0) >= 1 {
                    break deliveries;
                }
                assert!(started.elapsed() < Duration::from_secs(15), "{deliveries}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let got_the_event = listener
                .accepted("/landing/")
                .iter()
                .any(|r| r.body["event"]["usage"] == created);
            assert!(
                got_the_event || deliveries[0]["status"] != "delivered",
                "recorded as delivered though the listener never got the event: {deliveries}; \
                 the listener saw {:?}",
                listener
                    .all()
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.status))
                    .collect::<Vec<_>>()
            );
            let methods: Vec<String> = listener.all().into_iter().map(|r| r.method).collect();
            assert!(methods.iter().all(|m| m == "POST"), "events go by POST only: {methods:?}");
        }

        async fn an_event_before_the_subscription_is_not_delivered_to_it(app) {
            let listener = TestListener::start().await;
            let before = id_of(&app.create("/usage", &usage("DATA", "received")).await);
            subscribe(&app, &listener, "late", None).await;
            let after = id_of(&app.create("/usage", &usage("DATA", "received")).await);
            let received = listener.wait_for_count(&under("late"), 1).await;
            assert_eq!(summary(&received), vec![pair("UsageCreateEvent", &after)]);
            assert_ne!(before, after);
        }
    }
}

/// `fast`, with room for a slow callback (5 s).
pub fn slow_callbacks(c: &mut Config) {
    fast(c);
    c.callback_timeout_ms = 5_000;
}

mod isolation {
    use super::*;

    backend_tests_with! {
        crate::events::slow_callbacks;

        // While one listener takes 2 s to answer, the others get their events at once.
        async fn a_slow_listener_does_not_hold_up_other_subscriptions(app) {
            let listener = TestListener::start().await;
            listener.delay("/slow/", Duration::from_secs(2));
            app.create("/hub", &json!({"callback": listener.url("/slow")})).await;
            app.create("/hub", &json!({"callback": listener.url("/quick")})).await;
            for _ in 0..5 {
                app.create("/usage", &usage("DATA", "received")).await;
            }
            let created = Instant::now();
            listener.wait_for_count("/quick/", 5).await;
            let took = created.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "the healthy subscription got its 5 events after {took:?}"
            );
        }
    }
}

mod allow_list {
    use super::*;

    backend_tests_with! {
        crate::events::example_com_only;

        async fn a_callback_to_a_host_not_allowed_is_400(app) {
            for callback in [
                "http://127.0.0.1:9/hook",
                "http://localhost:9/hook",
                "https://example.org/hook",
                "https://evil.example.com.attacker.net/hook",
            ] {
                let message =
                    assert_tmf_error(app.post("/hub", &json!({"callback": callback})).await, 400).await;
                assert!(message.contains("callback"), "{callback}: {message}");
            }
            assert_eq!(app.read("/hub").await, json!([]));
            let allowed = app
                .create("/hub", &json!({"callback": "https://example.com/tmf/hook"}))
                .await;
            assert_eq!(allowed["callback"], "https://example.com/tmf/hook");
            let response = app
                .post("/hub", &json!({"callback": "http://EXAMPLE.com:8080/hook"}))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED, "host names are case-insensitive");
        }
    }
}

mod retries {
    use super::*;

    backend_tests_with! {
        crate::events::patient;

        async fn a_listener_down_for_a_while_gets_everything_in_order_once_back(app) {
            let listener = TestListener::start().await;
            listener.set_down(true);
            let id = subscribe(&app, &listener, "slow", None).await;
            let mut expected = Vec::new();
            for n in 0..5 {
                let created = app.create("/usage", &usage(["VOICE", "DATA"][n % 2], "received")).await;
                expected.push(pair("UsageCreateEvent", &id_of(&created)));
            }
            let first = expected[0].1.clone();
            let patched = app
                .patch_ok(&format!("/usage/{first}"), &json!({"status": "rated"}))
                .await;
            expected.push(pair("UsageStateChangeEvent", &id_of(&patched)));

            // Retried while down: attempts are recorded on the pending head of the queue.
            wait_deliveries(&app, &id, Some("pending"), "a delivery attempted 3 times", |d| {
                d.iter().any(|d| d["attempts"].as_i64().unwrap_or(0) >= 3)
            })
            .await;
            let refused = listener.refused(&under("slow"));
            assert!(refused.len() >= 3, "{} refused", refused.len());
            assert!(listener.accepted(&under("slow")).is_empty());
            let pending = deliveries(&app, &id, Some("pending")).await;
            assert_eq!(pending.len(), 6, "{pending:#?}");
            let failing: Vec<&Value> = pending.iter().filter(|d| d["attempts"] != 0).collect();
            assert!(
                failing.iter().all(|d| d["lastError"].as_str().is_some_and(|e| e.contains("503"))),
                "{failing:#?}"
            );
            assert!(pending.iter().all(|d| d["nextAttemptAt"].is_string()), "{pending:#?}");

            listener.set_down(false);
            let received = listener.wait_for_count(&under("slow"), 6).await;
            assert_eq!(summary(&received), expected, "in commit order");
            assert_each_once(&received);
            let delivered = wait_deliveries(&app, &id, Some("delivered"), "6 delivered", |d| d.len() == 6).await;
            assert!(
                delivered.iter().any(|d| d["attempts"].as_i64().unwrap_or(0) > 1),
                "attempts are recorded: {delivered:#?}"
            );
            assert!(deliveries(&app, &id, Some("pending")).await.is_empty());
            listener.assert_quiet(&under("slow"), 6, Duration::from_millis(300)).await;
        }

        async fn unregistering_drops_what_was_still_queued(app) {
            let listener = TestListener::start().await;
            listener.set_down(true);
            let gone = subscribe(&app, &listener, "gone", None).await;
            subscribe(&app, &listener, "sentinel", None).await;
            for _ in 0..3 {
                app.create("/usage", &usage("DATA", "received")).await;
            }
            wait_deliveries(&app, &gone, Some("pending"), "a failed attempt", |d| {
                d.iter().any(|d| d["attempts"].as_i64().unwrap_or(0) >= 1)
            })
            .await;
            let response = app.delete(&format!("/hub/{gone}")).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            // An attempt leased just before the unregistration may still be on its way (it is
            // sent right after its lease); two more attempts on the other subscription, at
            // least two backoff delays later, give it time to arrive (refused: still down).
            let refused = listener.refused(&under("sentinel")).len();
            let started = Instant::now();
            while listener.refused(&under("sentinel")).len() < refused + 2 {
                assert!(started.elapsed() < DEADLINE, "the sentinel is retried");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            listener.set_down(false);
            // The subscription left in place gets its three events; the removed one nothing.
            listener.wait_for_count(&under("sentinel"), 3).await;
            listener.assert_quiet(&under("gone"), 0, Duration::from_millis(400)).await;
        }

        async fn a_stopped_listener_restarted_on_its_port_gets_everything(app) {
            let mut listener = TestListener::start().await;
            let id = subscribe(&app, &listener, "flaky", None).await;
            let first = id_of(&app.create("/usage", &usage("DATA", "received")).await);
            listener.wait_for_count(&under("flaky"), 1).await;

            listener.stop().await;
            let mut expected = vec![pair("UsageCreateEvent", &first)];
            for _ in 0..4 {
                let created = app.create("/usage", &usage("SMS", "received")).await;
                expected.push(pair("UsageCreateEvent", &id_of(&created)));
            }
            // Connection refused: retried, and the error recorded.
            let pending = wait_deliveries(&app, &id, Some("pending"), "a failed attempt", |d| {
                d.iter().any(|d| d["attempts"].as_i64().unwrap_or(0) >= 2)
            })
            .await;
            assert!(
                pending.iter().any(|d| d["lastError"].is_string()),
                "{pending:#?}"
            );
            listener.restart().await;
            let received = listener.wait_for_count(&under("flaky"), 5).await;
            assert_eq!(summary(&received), expected, "in commit order");
            assert_each_once(&received);
            wait_deliveries(&app, &id, Some("delivered"), "5 delivered", |d| d.len() == 5).await;
        }
    }
}

mod dead_letters {
    use super::*;

    backend_tests_with! {
        crate::events::impatient;

        async fn deliveries_die_after_max_attempts_and_redrive_delivers_them(app) {
            let listener = TestListener::start().await;
            listener.set_down(true);
            let id = subscribe(&app, &listener, "dlq", None).await;
            let mut expected = Vec::new();
            for usage_type in ["VOICE", "DATA", "SMS"] {
                let created = app.create("/usage", &usage(usage_type, "received")).await;
                expected.push(pair("UsageCreateEvent", &id_of(&created)));
            }
            let dead = wait_deliveries(&app, &id, Some("dead"), "3 dead deliveries", |d| d.len() == 3).await;
            for d in &dead {
                assert_eq!(d["status"], "dead", "{d}");
                assert_eq!(d["attempts"], 2, "{d}");
                assert!(
                    d["lastError"].as_str().is_some_and(|e| e.contains("503")),
                    "the last error is kept: {d}"
                );
                assert!(d.get("deliveredAt").is_none_or(Value::is_null), "{d}");
            }
            assert!(deliveries(&app, &id, Some("pending")).await.is_empty());
            assert!(deliveries(&app, &id, Some("delivered")).await.is_empty());
            assert_eq!(listener.refused(&under("dlq")).len(), 6, "two attempts each");
            assert!(listener.accepted(&under("dlq")).is_empty());

            listener.set_down(false);
            let response = redrive(&app, &id).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(json_body(response).await["redriven"], 3);
            let received = listener.wait_for_count(&under("dlq"), 3).await;
            assert_eq!(summary(&received), expected, "in their original order");
            assert_each_once(&received);
            wait_deliveries(&app, &id, Some("delivered"), "3 delivered", |d| d.len() == 3).await;
            assert!(deliveries(&app, &id, Some("dead")).await.is_empty());

            // Nothing left to redrive.
            let response = redrive(&app, &id).await;
            assert_eq!(json_body(response).await["redriven"], 0);
            assert_tmf_error(redrive(&app, "no-such-hub").await, 404).await;
            listener.assert_quiet(&under("dlq"), 3, Duration::from_millis(300)).await;
        }
    }
}
