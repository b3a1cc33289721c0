//! `/hub`: registering and unregistering listeners of this server's events.

use crate::backend_tests;
use crate::helpers::{assert_tmf_error, id_of, json_body, keys_of, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// The ids of the registered subscriptions (`GET /hub`, an extension).
async fn hub_ids(app: &TestApp) -> Vec<String> {
    let subscriptions = app.read("/hub").await;
    let mut ids: Vec<String> = subscriptions
        .as_array()
        .unwrap_or_else(|| panic!("GET /hub answers an array, not {subscriptions}"))
        .iter()
        .map(id_of)
        .collect();
    ids.sort();
    ids
}

backend_tests! {
    async fn register_answers_201_with_id_callback_and_query(app) {
        let body = json!({
            "callback": "https://billing.example.com/tmf-api/usageManagement/v4/listener",
            "query": "eventType=UsageCreateEvent"
        });
        let response = app.post("/hub", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let subscription = json_body(response).await;
        let id = id_of(&subscription);
        uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("the id {id} is a UUID"));
        assert_eq!(subscription["callback"], body["callback"]);
        assert_eq!(subscription["query"], body["query"]);
        assert_eq!(keys_of(&subscription), ["callback", "id", "query", "secret"]);
        // Kept as registered (GET /hub/{id} and GET /hub are extensions), less the signing
        // secret, answered only by the registration.
        let mut registered = subscription.clone();
        registered.as_object_mut().unwrap().remove("secret");
        assert_eq!(app.read(&format!("/hub/{id}")).await, registered);
        assert_eq!(hub_ids(&app).await, vec![id]);
    }

    async fn register_without_a_query_answers_no_query(app) {
        let subscription = app
            .create(
                "/hub",
                &json!({"callback": "http://10.0.0.7:8080/listener"}),
            )
            .await;
        assert_eq!(subscription["callback"], "http://10.0.0.7:8080/listener");
        assert!(
            subscription.get("query").is_none_or(|q| q.is_null()),
            "{subscription}"
        );
        id_of(&subscription);
    }

    async fn each_registration_has_its_own_id(app) {
        let body = json!({"callback": "https://billing.example.com/listener"});
        let first = app.create("/hub", &body).await;
        let second = app.create("/hub", &body).await;
        assert_ne!(id_of(&first), id_of(&second));
        let mut both = vec![id_of(&first), id_of(&second)];
        both.sort();
        assert_eq!(hub_ids(&app).await, both);
        // Removing one leaves the other.
        let response = app.delete(&format!("/hub/{}", id_of(&first))).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(hub_ids(&app).await, vec![id_of(&second)]);
        let mut second = second;
        second.as_object_mut().unwrap().remove("secret");
        assert_eq!(app.read(&format!("/hub/{}", id_of(&second))).await, second);
    }

    async fn a_callback_that_is_not_an_http_url_is_400(app) {
        for callback in [
            "ftp://billing.example.com/listener",
            "mailto:ops@example.com",
            "file:///etc/passwd",
            "not a url",
            "/relative/listener",
            "billing.example.com/listener",
            "http://",
            "",
        ] {
            let message =
                assert_tmf_error(app.post("/hub", &json!({"callback": callback})).await, 400).await;
            assert!(
                message.contains("callback"),
                "the message names the callback: {message}"
            );
        }
        assert!(
            hub_ids(&app).await.is_empty(),
            "none of them was registered"
        );
        let valid = app
            .create("/hub", &json!({"callback": "https://ok.example.com/l"}))
            .await;
        assert_eq!(
            app.delete(&format!("/hub/{}", id_of(&valid)))
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
    }

    async fn a_missing_or_mistyped_callback_is_400(app) {
        assert_tmf_error(app.post("/hub", &json!({})).await, 400).await;
        assert_tmf_error(
            app.post("/hub", &json!({"query": "eventType=UsageCreateEvent"}))
                .await,
            400,
        )
        .await;
        assert_tmf_error(app.post("/hub", &json!({"callback": 42})).await, 400).await;
        assert_tmf_error(app.post("/hub", &json!({"callback": null})).await, 400).await;
        assert_tmf_error(
            app.post("/hub", &json!({"callback": ["https://ok.example.com/l"]}))
                .await,
            400,
        )
        .await;
        assert!(
            hub_ids(&app).await.is_empty(),
            "none of them was registered"
        );
    }

    async fn unregister_answers_204_then_404(app) {
        let subscription = app
            .create("/hub", &json!({"callback": "https://billing.example.com/listener", "query": "eventType=UsageDeleteEvent"}))
            .await;
        let path = format!("/hub/{}", id_of(&subscription));
        let response = app.delete(&path).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.bytes().await.unwrap().is_empty());
        assert_tmf_error(app.get(&path).await, 404).await;
        assert_tmf_error(app.delete(&path).await, 404).await;
        assert!(hub_ids(&app).await.is_empty());
    }

    async fn unregister_of_an_unknown_id_is_404(app) {
        app.create(
            "/hub",
            &json!({"callback": "https://billing.example.com/listener"}),
        )
        .await;
        let message = assert_tmf_error(app.delete("/hub/no-such-subscription").await, 404).await;
        assert!(message.contains("no-such-subscription"), "{message}");
        assert_eq!(
            hub_ids(&app).await.len(),
            1,
            "the other subscription is untouched"
        );
    }
}
