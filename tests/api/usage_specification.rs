//! `/usageSpecification`: create, retrieve, list (paging, filters, fields), patch and delete.

use crate::fixtures::{specification, voice_specification};
use crate::helpers::{assert_tmf_error, id_of, json_body, keys_of, TestApp};
use crate::{backend_tests, backend_tests_with};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PATH: &str = "/usageSpecification";

fn instant(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a date-time string, not {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// `posted` plus the id and href the server gave it (and the lastUpdate it stamped).
fn as_stored(app: &TestApp, posted: &Value, created: &Value) -> Value {
    let id = id_of(created);
    let mut expected = posted.clone();
    expected["id"] = json!(id);
    expected["href"] = json!(app.href("usageSpecification", &id));
    if posted.get("lastUpdate").is_none() {
        expected["lastUpdate"] = created["lastUpdate"].clone();
    }
    expected
}

async fn create_all(app: &TestApp, bodies: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(id_of(&app.create(PATH, body).await));
    }
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

backend_tests! {
    async fn create_answers_201_with_a_server_id_and_an_absolute_href(app) {
        let response = app.post(PATH, &voice_specification()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let id = id_of(&created);
        uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("the id {id} is a UUID"));
        let port = app.root.rsplit(':').next().unwrap();
        assert_eq!(
            created["href"],
            format!("http://127.0.0.1:{port}/tmf-api/usageManagement/v4/usageSpecification/{id}")
        );
    }

    async fn everything_posted_comes_back_unchanged(app) {
        let before = Utc::now();
        let posted = voice_specification();
        let created = app.create(PATH, &posted).await;
        assert_eq!(created, as_stored(&app, &posted, &created));
        // The server stamps lastUpdate when the client gave none.
        let stamped = instant(&created["lastUpdate"]);
        assert!(
            stamped >= before - chrono::Duration::seconds(1),
            "{stamped} vs {before}"
        );
        assert!(stamped <= Utc::now() + chrono::Duration::seconds(1));
        assert_eq!(
            created["specCharacteristic"][0]["@valueSchemaLocation"],
            posted["specCharacteristic"][0]["@valueSchemaLocation"]
        );
        assert_eq!(
            created["specCharacteristic"][2]["characteristicValueSpecification"][0]["value"]
                ["tags"],
            json!(["urban", "4G"])
        );
        assert_eq!(created["validFor"], posted["validFor"]);
        assert_eq!(created["targetEntitySchema"]["@type"], "VoiceUsage");
        assert_eq!(created["@baseType"], "EntitySpecification");
        let read = app.read(&format!("{PATH}/{}", id_of(&created))).await;
        assert_eq!(read, created);
    }

    async fn a_client_last_update_is_kept(app) {
        let mut posted = specification("Imported", "active");
        posted["lastUpdate"] = json!("2019-03-01T08:00:00Z");
        let created = app.create(PATH, &posted).await;
        assert_eq!(created["lastUpdate"], "2019-03-01T08:00:00Z");
        assert_eq!(created, as_stored(&app, &posted, &created));
    }

    async fn extension_attributes_are_kept(app) {
        let mut posted = specification("Roaming", "active");
        posted["@type"] = json!("RoamingUsageSpecification");
        posted["roamingAgreement"] =
            json!({"partner": "ATXYZ", "zones": ["EU", "CH"], "since": 2015});
        posted["specCharacteristic"][0]["unitOfMeasure"] = json!("MB");
        let created = app.create(PATH, &posted).await;
        assert_eq!(created, as_stored(&app, &posted, &created));
        assert_eq!(
            app.read(&format!("{PATH}/{}", id_of(&created))).await,
            created
        );
    }

    async fn a_client_id_and_href_are_replaced_by_the_servers(app) {
        let mut posted = specification("CallSpec", "active");
        posted["id"] = json!("spec-1");
        posted["href"] = json!("https://elsewhere.example.com/usageSpecification/spec-1");
        let created = app.create(PATH, &posted).await;
        let id = id_of(&created);
        assert_ne!(id, "spec-1");
        assert_eq!(created["href"], app.href("usageSpecification", &id));
        assert_tmf_error(app.get(&format!("{PATH}/spec-1")).await, 404).await;
        assert_eq!(app.list(PATH).await.ids(), vec![id]);
    }

    async fn href_is_the_same_in_create_list_retrieve_and_filtered_list(app) {
        let created = app.create(PATH, &voice_specification()).await;
        app.create(PATH, &specification("DataSpec", "draft")).await;
        let id = id_of(&created);
        let href = created["href"].clone();
        assert_eq!(app.read(&format!("{PATH}/{id}")).await["href"], href);
        let all = app.list(PATH).await;
        assert_eq!(
            all.items.iter().find(|s| s["id"] == id.as_str()).unwrap()["href"],
            href
        );
        assert_eq!(
            app.list(&format!("{PATH}?name=CallSpec"))
                .await
                .values_of("href"),
            vec![href.clone()]
        );
        assert_eq!(
            app.list(&format!("{PATH}?id={id}&fields=name"))
                .await
                .values_of("href"),
            vec![href]
        );
    }

    async fn retrieve_of_an_unknown_id_is_404(app) {
        app.create(PATH, &voice_specification()).await;
        let message = assert_tmf_error(app.get(&format!("{PATH}/unknown-spec")).await, 404).await;
        assert!(message.contains("unknown-spec"), "{message}");
    }

    async fn list_counts_pages_and_orders_newest_first(app) {
        let bodies: Vec<Value> = (0..5)
            .map(|i| specification(&format!("Spec{i}"), "active"))
            .collect();
        let ids = create_all(&app, &bodies).await;
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        let all = app.list(PATH).await;
        assert_eq!(all.status, StatusCode::OK);
        assert_eq!((all.total, all.count), (5, 5));
        assert_eq!(all.ids(), newest_first);
        let first = app.list(&format!("{PATH}?limit=2")).await;
        let second = app.list(&format!("{PATH}?offset=2&limit=2")).await;
        let third = app.list(&format!("{PATH}?offset=4&limit=2")).await;
        for page in [&first, &second, &third] {
            assert_eq!(page.total, 5);
        }
        assert_eq!((first.count, second.count, third.count), (2, 2, 1));
        let paged: Vec<String> = [first.ids(), second.ids(), third.ids()].concat();
        assert_eq!(paged, newest_first, "the pages neither overlap nor skip");
    }

    async fn filter_by_name(app) {
        let ids = create_all(
            &app,
            &[
                specification("CallSpec", "active"),
                specification("DataSpec", "active"),
                specification("SmsSpec", "retired"),
            ],
        )
        .await;
        let listing = app.list(&format!("{PATH}?name=DataSpec")).await;
        assert_eq!(listing.ids(), vec![ids[1].clone()]);
        assert_eq!(listing.items[0]["name"], "DataSpec");
        assert_eq!(listing.total, 1);
        let two = app.list(&format!("{PATH}?name=CallSpec,SmsSpec")).await;
        assert_eq!(
            sorted(two.ids()),
            sorted(vec![ids[0].clone(), ids[2].clone()])
        );
        assert_eq!(app.total(&format!("{PATH}?name=Data")).await, 0);
    }

    async fn filter_by_id_lifecycle_status_version_and_is_bundle(app) {
        let mut bundle = specification("Bundle", "active");
        bundle["isBundle"] = json!(true);
        bundle["version"] = json!("2.1");
        let ids = create_all(
            &app,
            &[
                specification("CallSpec", "active"),
                specification("DataSpec", "draft"),
                bundle,
            ],
        )
        .await;
        assert_eq!(
            app.list(&format!("{PATH}?id={}", ids[1])).await.ids(),
            vec![ids[1].clone()]
        );
        let active = app.list(&format!("{PATH}?lifecycleStatus=active")).await;
        assert_eq!(
            sorted(active.ids()),
            sorted(vec![ids[0].clone(), ids[2].clone()])
        );
        assert_eq!(
            app.list(&format!("{PATH}?version=2.1")).await.ids(),
            vec![ids[2].clone()]
        );
        assert_eq!(
            app.list(&format!("{PATH}?isBundle=true")).await.ids(),
            vec![ids[2].clone()]
        );
        let not_bundles = app.list(&format!("{PATH}?isBundle=false")).await;
        assert_eq!(
            sorted(not_bundles.ids()),
            sorted(vec![ids[0].clone(), ids[1].clone()])
        );
        let anded = app
            .list(&format!("{PATH}?lifecycleStatus=active&isBundle=false"))
            .await;
        assert_eq!(anded.ids(), vec![ids[0].clone()]);
        let anded = app
            .list(&format!(
                "{PATH}?lifecycleStatus=draft,active&name=DataSpec,Bundle"
            ))
            .await;
        assert_eq!(
            sorted(anded.ids()),
            sorted(vec![ids[1].clone(), ids[2].clone()])
        );
    }

    async fn fields_select_first_level_attributes_on_list_and_retrieve(app) {
        let created = app.create(PATH, &voice_specification()).await;
        let id = id_of(&created);
        let listing = app.list(&format!("{PATH}?fields=name,validFor")).await;
        assert_eq!(
            keys_of(&listing.items[0]),
            ["href", "id", "name", "validFor"]
        );
        assert_eq!(listing.items[0]["validFor"], created["validFor"]);
        let read = app
            .read(&format!(
                "{PATH}/{id}?fields=specCharacteristic,lifecycleStatus"
            ))
            .await;
        assert_eq!(
            keys_of(&read),
            ["href", "id", "lifecycleStatus", "specCharacteristic"]
        );
        assert_eq!(read["specCharacteristic"], created["specCharacteristic"]);
    }

    async fn patch_answers_the_whole_updated_specification_and_moves_last_update(app) {
        let mut posted = voice_specification();
        posted["lastUpdate"] = json!("2020-06-01T12:00:00Z");
        let created = app.create(PATH, &posted).await;
        let id = id_of(&created);
        let before_patch = Utc::now() - chrono::Duration::seconds(1);
        let patched = app
            .patch_ok(
                &format!("{PATH}/{id}"),
                &json!({"lifecycleStatus": "retired", "version": "1.1"}),
            )
            .await;
        let updated = instant(&patched["lastUpdate"]);
        assert!(
            updated > instant(&created["lastUpdate"]),
            "lastUpdate moved forward"
        );
        assert!(
            updated >= before_patch,
            "lastUpdate is the time of the change: {updated}"
        );
        let mut expected = created.clone();
        expected["lifecycleStatus"] = json!("retired");
        expected["version"] = json!("1.1");
        expected["lastUpdate"] = patched["lastUpdate"].clone();
        assert_eq!(patched, expected);
        assert_eq!(app.read(&format!("{PATH}/{id}")).await, expected);
        // Another change moves it again.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let again = app
            .patch_ok(&format!("{PATH}/{id}"), &json!({"description": "Retired"}))
            .await;
        assert!(instant(&again["lastUpdate"]) > updated);
    }

    async fn patch_merges_objects_replaces_arrays_and_null_removes(app) {
        let created = app.create(PATH, &voice_specification()).await;
        let id = id_of(&created);
        let characteristics =
            json!([{"name": "volume", "valueType": "integer", "minCardinality": 0}]);
        let patched = app
            .patch_ok(
                &format!("{PATH}/{id}"),
                &json!({
                    "validFor": {"endDateTime": "2035-12-31T23:59:59Z"},
                    "specCharacteristic": characteristics,
                    "description": null,
                    "attachment": null
                }),
            )
            .await;
        assert_eq!(
            patched["validFor"],
            json!({"startDateTime": "2020-01-01T00:00:00Z", "endDateTime": "2035-12-31T23:59:59Z"}),
            "validFor merged"
        );
        assert_eq!(
            patched["specCharacteristic"], characteristics,
            "the array replaced"
        );
        assert!(patched.get("description").is_none(), "description removed");
        assert!(patched.get("attachment").is_none(), "attachment removed");
        assert_eq!(
            patched["relatedParty"], created["relatedParty"],
            "the rest untouched"
        );
        assert_eq!(app.read(&format!("{PATH}/{id}")).await, patched);
    }

    async fn patching_id_or_href_is_422_and_changes_nothing(app) {
        let created = app.create(PATH, &voice_specification()).await;
        let path = format!("{PATH}/{}", id_of(&created));
        assert_tmf_error(app.patch(&path, &json!({"id": "other"})).await, 422).await;
        assert_tmf_error(
            app.patch(
                &path,
                &json!({"href": "https://x.example.com/s/1", "name": "X"}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(app.read(&path).await, created, "lastUpdate included");
    }

    async fn patch_of_an_unknown_id_is_404(app) {
        let message = assert_tmf_error(
            app.patch(&format!("{PATH}/unknown-spec"), &json!({"name": "X"}))
                .await,
            404,
        )
        .await;
        assert!(message.contains("unknown-spec"), "{message}");
        assert_eq!(app.total(PATH).await, 0, "a PATCH creates nothing");
    }

    async fn an_invalid_patched_value_is_400_and_changes_nothing(app) {
        let created = app.create(PATH, &voice_specification()).await;
        let path = format!("{PATH}/{}", id_of(&created));
        for patch in [
            json!({"isBundle": "yes", "name": "Changed"}),
            json!({"lastUpdate": "last tuesday"}),
            json!({"validFor": {"startDateTime": "soon"}}),
            json!({"specCharacteristic": [{"name": "x", "maxCardinality": "many"}]}),
            json!({"relatedParty": [{"id": "p1"}]}),
            json!({"entitySpecRelationship": [{"id": "es-2"}]}),
        ] {
            assert_tmf_error(app.patch(&path, &patch).await, 400).await;
            assert_eq!(app.read(&path).await, created, "after PATCH {patch}");
        }
    }

    async fn delete_answers_204_then_the_specification_is_gone(app) {
        let created = app.create(PATH, &voice_specification()).await;
        let kept = app.create(PATH, &specification("DataSpec", "active")).await;
        let path = format!("{PATH}/{}", id_of(&created));
        let response = app.delete(&path).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_tmf_error(app.get(&path).await, 404).await;
        assert_tmf_error(app.patch(&path, &json!({"name": "Back"})).await, 404).await;
        assert_tmf_error(app.delete(&path).await, 404).await;
        assert_eq!(app.list(PATH).await.ids(), vec![id_of(&kept)]);
    }

    async fn usages_and_specifications_are_separate_collections(app) {
        let spec = app.create(PATH, &voice_specification()).await;
        let usage = app.create("/usage", &crate::fixtures::voice_usage()).await;
        assert_tmf_error(app.get(&format!("/usage/{}", id_of(&spec))).await, 404).await;
        assert_tmf_error(app.get(&format!("{PATH}/{}", id_of(&usage))).await, 404).await;
        assert_eq!(app.list(PATH).await.ids(), vec![id_of(&spec)]);
        assert_eq!(app.list("/usage").await.ids(), vec![id_of(&usage)]);
    }
}

mod public_url {
    use super::*;

    backend_tests_with! {
        |c: &mut tmf635::Config| c.public_url = Some("https://usage.example.com".into());

        async fn hrefs_use_the_public_url(app) {
            let created = app.create(PATH, &voice_specification()).await;
            let id = id_of(&created);
            let href = format!(
                "https://usage.example.com/tmf-api/usageManagement/v4/usageSpecification/{id}"
            );
            assert_eq!(created["href"], href);
            assert_eq!(app.read(&format!("{PATH}/{id}")).await["href"], href);
            assert_eq!(app.list(PATH).await.values_of("href"), vec![json!(href)]);
            assert_eq!(
                app.list(&format!("{PATH}?name=CallSpec"))
                    .await
                    .values_of("href"),
                vec![json!(href)]
            );
        }
    }
}
