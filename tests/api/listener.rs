//! `/listener/*`: this server receiving another server's events, and `GET /listener/event`
//! (an extension) reading them back.

use crate::backend_tests;
use crate::fixtures::{voice_specification, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Each listener: its path, the event type it takes, and the payload attribute.
const LISTENERS: [(&str, &str, &str); 7] = [
    ("usageCreateEvent", "UsageCreateEvent", "usage"),
    (
        "usageAttributeValueChangeEvent",
        "UsageAttributeValueChangeEvent",
        "usage",
    ),
    ("usageDeleteEvent", "UsageDeleteEvent", "usage"),
    ("usageStateChangeEvent", "UsageStateChangeEvent", "usage"),
    (
        "usageSpecificationCreateEvent",
        "UsageSpecificationCreateEvent",
        "usageSpecification",
    ),
    (
        "usageSpecificationAttributeValueChangeEvent",
        "UsageSpecificationAttributeValueChangeEvent",
        "usageSpecification",
    ),
    (
        "usageSpecificationDeleteEvent",
        "UsageSpecificationDeleteEvent",
        "usageSpecification",
    ),
];

/// A notification as a TMF635 server sends it.
fn event(event_type: &str, payload: &str, n: usize) -> Value {
    let resource = if payload == "usage" {
        let mut usage = voice_usage();
        usage["id"] = json!(format!("u-{n}"));
        usage["href"] = json!(format!(
            "https://upstream.example.com/tmf-api/usageManagement/v4/usage/u-{n}"
        ));
        usage
    } else {
        let mut spec = voice_specification();
        spec["id"] = json!(format!("s-{n}"));
        spec["href"] = json!(format!(
            "https://upstream.example.com/tmf-api/usageManagement/v4/usageSpecification/s-{n}"
        ));
        spec["lastUpdate"] = json!("2024-05-01T09:59:00Z");
        spec
    };
    let mut event = json!({
        "eventId": format!("evt-{n}"),
        "eventTime": "2024-05-01T10:00:00.123Z",
        "eventType": event_type,
        "correlationId": "corr-42",
        "domain": "usageManagement",
        "title": format!("{event_type} notification"),
        "description": format!("{payload} changed upstream"),
        "priority": "normal",
        "timeOcurred": "2024-05-01T09:59:59Z",
        "event": {payload: resource}
    });
    if event_type.ends_with("AttributeValueChangeEvent") {
        event["fieldPath"] = json!("status");
    }
    event
}

async fn received(app: &TestApp, query: &str) -> (u64, Vec<Value>) {
    let listing = app.list(&format!("/listener/event{query}")).await;
    (listing.total, listing.items)
}

backend_tests! {
    async fn each_listener_accepts_its_event_and_keeps_it(app) {
        for (n, (path, event_type, payload)) in LISTENERS.iter().enumerate() {
            let sent = event(event_type, payload, n);
            let response = app.post(&format!("/listener/{path}"), &sent).await;
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "POST /listener/{path}"
            );
            let answer = json_body(response).await;
            id_of(&answer);
            assert_eq!(
                answer["callback"],
                app.url(&format!("/listener/{path}")),
                "{answer}"
            );
            let (total, events) = received(&app, &format!("?eventType={event_type}")).await;
            assert_eq!(total, 1, "one {event_type} kept");
            assert_eq!(events, vec![sent], "the {event_type} reads back as sent");
        }
        let (total, events) = received(&app, "").await;
        assert_eq!(total, 7);
        let ids: Vec<&str> = events
            .iter()
            .map(|e| e["eventId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["evt-6", "evt-5", "evt-4", "evt-3", "evt-2", "evt-1", "evt-0"],
            "newest first"
        );
    }

    async fn received_events_page_and_filter_by_type(app) {
        for n in 0..3 {
            app.create(
                "/listener/usageCreateEvent",
                &event("UsageCreateEvent", "usage", n),
            )
            .await;
        }
        app.create(
            "/listener/usageDeleteEvent",
            &event("UsageDeleteEvent", "usage", 3),
        )
        .await;
        let (total, events) = received(&app, "?eventType=UsageCreateEvent&limit=2").await;
        assert_eq!(total, 3);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e["eventType"] == "UsageCreateEvent"));
        let (total, events) = received(&app, "?eventType=UsageCreateEvent&offset=2&limit=2").await;
        assert_eq!((total, events.len()), (3, 1));
        assert_eq!(events[0]["eventId"], "evt-0");
        let (total, events) = received(&app, "?eventType=UsageStateChangeEvent").await;
        assert_eq!((total, events.len()), (0, 0));
        assert_eq!(received(&app, "").await.0, 4);
    }

    async fn an_event_without_event_type_is_kept_under_its_listener(app) {
        let mut sent = event("UsageStateChangeEvent", "usage", 1);
        sent.as_object_mut().unwrap().remove("eventType");
        app.create("/listener/usageStateChangeEvent", &sent).await;
        let (total, events) = received(&app, "?eventType=UsageStateChangeEvent").await;
        assert_eq!(total, 1);
        assert_eq!(events[0]["eventId"], "evt-1");
    }

    async fn an_event_of_another_type_is_400_and_not_kept(app) {
        for (n, (path, event_type, payload)) in LISTENERS.iter().enumerate() {
            // The event of the next listener, sent to this one.
            let (_, other_type, _) = LISTENERS[(n + 1) % LISTENERS.len()];
            let mut sent = event(event_type, payload, n);
            sent["eventType"] = json!(other_type);
            let message =
                assert_tmf_error(app.post(&format!("/listener/{path}"), &sent).await, 400).await;
            assert!(message.contains(other_type), "{message}");
        }
        assert_eq!(received(&app, "").await.0, 0);
    }

    async fn a_malformed_event_is_400_and_not_kept(app) {
        let mut bad_time = event("UsageCreateEvent", "usage", 1);
        bad_time["eventTime"] = json!("yesterday at noon");
        let mut bad_occurred = event("UsageCreateEvent", "usage", 2);
        bad_occurred["timeOcurred"] = json!(20240501);
        let mut bad_usage = event("UsageCreateEvent", "usage", 3);
        bad_usage["event"]["usage"]["status"] = json!("nope");
        let mut bad_characteristic = event("UsageCreateEvent", "usage", 4);
        bad_characteristic["event"]["usage"]["usageCharacteristic"] = json!([{"value": 1}]);
        let mut bad_payload = event("UsageCreateEvent", "usage", 5);
        bad_payload["event"] = json!("usage u-5");
        let mut bad_date = event("UsageCreateEvent", "usage", 6);
        bad_date["event"]["usage"]["usageDate"] = json!("21.09.2020");
        for sent in [
            bad_time,
            bad_occurred,
            bad_usage,
            bad_characteristic,
            bad_payload,
            bad_date,
        ] {
            assert_tmf_error(app.post("/listener/usageCreateEvent", &sent).await, 400).await;
        }
        let mut bad_spec = event("UsageSpecificationCreateEvent", "usageSpecification", 7);
        bad_spec["event"]["usageSpecification"]["isBundle"] = json!("no");
        assert_tmf_error(
            app.post("/listener/usageSpecificationCreateEvent", &bad_spec)
                .await,
            400,
        )
        .await;
        assert_tmf_error(
            app.post(
                "/listener/usageDeleteEvent",
                &json!([event("UsageDeleteEvent", "usage", 8)]),
            )
            .await,
            400,
        )
        .await;
        assert_eq!(received(&app, "").await.0, 0);
    }

    async fn received_events_reject_bad_paging(app) {
        assert_tmf_error(app.get("/listener/event?offset=-1").await, 400).await;
        assert_tmf_error(app.get("/listener/event?limit=ten").await, 400).await;
    }
}
