//! Events across tenants: a subscription belongs to its tenant and is sent only that tenant's
//! events; another tenant cannot read, remove, list the deliveries of or redrive it; events
//! received at `/listener/*` are read back only by the tenant that posted them.

use crate::fixtures::{usage, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body, Api};
use crate::listener_server::TestListener;
use serde_json::json;
use std::time::Duration;

/// Registers `{listener}/{name}` with `query`; answers the subscription's id.
async fn subscribe(api: &Api, listener: &TestListener, name: &str, query: Option<&str>) -> String {
    let mut body = json!({"callback": listener.url(&format!("/{name}"))});
    if let Some(query) = query {
        body["query"] = json!(query);
    }
    id_of(&api.create("/hub", &body).await)
}

/// A few delivery rounds: long enough for an event sent across to have arrived.
const GRACE: Duration = Duration::from_millis(500);

crate::tenancy_tests! {
    async fn events_go_only_to_their_tenants_subscriptions(t) {
        let listener = TestListener::start().await;
        subscribe(&t.a, &listener, "a", None).await;
        subscribe(&t.b, &listener, "b", None).await;
        subscribe(&t.b_key, &listener, "b-party", Some("event.usage.relatedParty.id=45hj-8888")).await;

        let created = t.a.create("/usage", &voice_usage()).await;
        let got = listener.wait_for_count("/a/", 1).await;
        assert_eq!(got[0].resource_id(), id_of(&created));
        assert!(got[0].path.ends_with("/listener/usageCreateEvent"), "{}", got[0].path);
        listener.assert_quiet("/b/", 0, GRACE).await;
        listener.assert_quiet("/b-party/", 0, Duration::ZERO).await;

        let mine = t.b.create("/usage", &usage("DATA", "rated")).await;
        let got = listener.wait_for_count("/b/", 1).await;
        assert_eq!(got[0].resource_id(), id_of(&mine));
        listener.assert_quiet("/a/", 1, GRACE).await;
        listener.assert_quiet("/b-party/", 0, Duration::ZERO).await;
    }

    async fn another_tenants_subscriptions_do_not_exist(t) {
        let listener = TestListener::start().await;
        let hub = subscribe(&t.a, &listener, "a", None).await;
        t.a.create("/usage", &usage("VOICE", "rated")).await;
        listener.wait_for_count("/a/", 1).await;
        let deliveries = json_body(t.a.get(&format!("/hub/{hub}/delivery")).await).await;
        assert_eq!(deliveries.as_array().map(Vec::len), Some(1), "{deliveries}");

        for b in [&t.b, &t.b_key] {
            assert_eq!(json_body(b.get("/hub").await).await, json!([]));
            assert_tmf_error(b.get(&format!("/hub/{hub}")).await, 404).await;
            assert_tmf_error(b.get(&format!("/hub/{hub}/delivery")).await, 404).await;
            assert_tmf_error(b.get(&format!("/hub/{hub}/delivery?status=dead")).await, 404).await;
            assert_tmf_error(b.post(&format!("/hub/{hub}/redrive"), &json!({})).await, 404).await;
            assert_tmf_error(b.delete(&format!("/hub/{hub}")).await, 404).await;
        }
        // Still a's, and still sent a's events.
        let listed = json_body(t.a.get("/hub").await).await;
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        t.a.create("/usage", &usage("SMS", "rated")).await;
        listener.wait_for_count("/a/", 2).await;
        let redriven = json_body(t.a.post(&format!("/hub/{hub}/redrive"), &json!({})).await).await;
        assert_eq!(redriven["redriven"], 0);
        let removed = t.a.delete(&format!("/hub/{hub}")).await;
        assert_eq!(removed.status().as_u16(), 204);
    }

    async fn received_events_are_read_back_by_their_tenant_only(t) {
        let event = json!({
            "eventId": "evt-a",
            "eventTime": "2024-05-01T10:00:00Z",
            "eventType": "UsageCreateEvent",
            "event": {"usage": {"id": "u-1", "usageType": "VOICE"}}
        });
        t.a.create("/listener/usageCreateEvent", &event).await;
        assert_eq!(t.a.list("/listener/event").await.total, 1);
        for b in [&t.b, &t.b_key] {
            let listing = b.list("/listener/event").await;
            assert_eq!((listing.total, listing.items.len()), (0, 0));
            assert_eq!(b.list("/listener/event?eventType=UsageCreateEvent").await.total, 0);
        }
    }
}
