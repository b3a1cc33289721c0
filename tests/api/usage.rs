//! `/usage`: create, retrieve, list (paging, filters, fields), patch and delete.

use crate::fixtures::{usage, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, join_all, json_body, keys_of, TestApp};
use crate::{backend_tests, backend_tests_with};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `posted` plus the id and href the server gave it.
fn with_id_and_href(app: &TestApp, posted: &Value, id: &str) -> Value {
    let mut expected = posted.clone();
    expected["id"] = json!(id);
    expected["href"] = json!(app.href("usage", id));
    expected
}

/// Creates usages one by one (so each is newer than the one before); answers their ids.
async fn create_all(app: &TestApp, bodies: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(id_of(&app.create("/usage", body).await));
    }
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

backend_tests! {
    async fn create_answers_201_with_a_server_id_and_an_absolute_href(app) {
        let response = app.post("/usage", &voice_usage()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let id = id_of(&created);
        uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("the id {id} is a UUID"));
        let port = app.root.rsplit(':').next().unwrap();
        assert_eq!(
            created["href"],
            format!("http://127.0.0.1:{port}/tmf-api/usageManagement/v4/usage/{id}")
        );
        // Two creations, two ids.
        let other = app.create("/usage", &voice_usage()).await;
        assert_ne!(id_of(&other), id);
    }

    async fn everything_posted_comes_back_unchanged(app) {
        let posted = voice_usage();
        let created = app.create("/usage", &posted).await;
        let id = id_of(&created);
        assert_eq!(created, with_id_and_href(&app, &posted, &id));
        // Spot checks of what an implementation tends to lose.
        assert_eq!(created["roamingZone"], "EU", "an extension attribute");
        assert_eq!(created["@type"], "VoiceUsage");
        assert_eq!(created["@schemaLocation"], posted["@schemaLocation"]);
        assert_eq!(
            created["relatedParty"][1]["partnerCode"], "ATXYZ",
            "a nested extension"
        );
        assert_eq!(created["relatedParty"][0]["@referredType"], "Individual");
        assert_eq!(
            created["ratedProductUsage"][0]["taxIncludedRatingAmount"],
            json!({"unit": "EUR", "value": 12.05})
        );
        assert_eq!(
            created["ratedProductUsage"][0]["productRef"]["id"],
            "1234-1234"
        );
        assert_eq!(
            created["usageCharacteristic"][6]["value"]["location"]["lat"],
            48.2082
        );
        assert_eq!(
            created["usageDate"], "2020-09-21T09:13:16-07:00",
            "the date as written"
        );
    }

    async fn any_json_under_a_characteristic_value_is_kept(app) {
        let values = [
            json!("text"),
            json!(""),
            json!(0),
            json!(-42),
            json!(3.25),
            json!(9_007_199_254_740_993_u64),
            json!(true),
            json!(false),
            json!([]),
            json!([1, "two", false, {"three": [3.0]}]),
            json!({}),
            json!({"nested": {"deeper": {"list": [[1, 2], [3]], "flag": true}}, "empty": ""}),
        ];
        let characteristics: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"name": format!("c{i}"), "value": v}))
            .collect();
        let posted = json!({"usageType": "DATA", "usageCharacteristic": characteristics});
        let created = app.create("/usage", &posted).await;
        let read = app.read(&format!("/usage/{}", id_of(&created))).await;
        for (i, value) in values.iter().enumerate() {
            assert_eq!(
                &created["usageCharacteristic"][i]["value"], value,
                "created value {i}"
            );
            assert_eq!(
                &read["usageCharacteristic"][i]["value"], value,
                "read value {i}"
            );
        }
        assert_eq!(read, with_id_and_href(&app, &posted, &id_of(&created)));
    }

    async fn a_client_id_and_href_are_replaced_by_the_servers(app) {
        let mut posted = usage("VOICE", "received");
        posted["id"] = json!("client-chosen-id");
        posted["href"] = json!("http://elsewhere.example.com/usage/client-chosen-id");
        let created = app.create("/usage", &posted).await;
        let id = id_of(&created);
        assert_ne!(id, "client-chosen-id");
        uuid::Uuid::parse_str(&id).expect("a server UUID");
        assert_eq!(created["href"], app.href("usage", &id));
        assert_tmf_error(app.get("/usage/client-chosen-id").await, 404).await;
        let listing = app.list("/usage").await;
        assert_eq!(listing.ids(), vec![id.clone()]);
        assert_eq!(listing.items[0]["href"], app.href("usage", &id));
    }

    async fn retrieve_answers_the_created_document(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let response = app.get(&format!("/usage/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "a JSON content type"
        );
        assert_eq!(json_body(response).await, created);
    }

    async fn retrieve_of_an_unknown_id_is_404_naming_it(app) {
        app.create("/usage", &voice_usage()).await;
        let message = assert_tmf_error(
            app.get("/usage/4f3a9d2e-0000-4000-8000-000000000000").await,
            404,
        )
        .await;
        assert!(
            message.contains("4f3a9d2e-0000-4000-8000-000000000000"),
            "{message}"
        );
    }

    async fn href_is_the_same_in_create_list_retrieve_and_filtered_list(app) {
        let created = app.create("/usage", &voice_usage()).await;
        app.create("/usage", &usage("DATA", "billed")).await;
        let id = id_of(&created);
        let href = created["href"].clone();
        assert_eq!(href, app.href("usage", &id));
        assert_eq!(app.read(&format!("/usage/{id}")).await["href"], href);
        let listing = app.list("/usage").await;
        let listed = listing
            .items
            .iter()
            .find(|u| u["id"] == id.as_str())
            .expect("listed");
        assert_eq!(listed["href"], href);
        let filtered = app.list(&format!("/usage?id={id}")).await;
        assert_eq!(filtered.values_of("href"), vec![href.clone()]);
        let filtered = app.list("/usage?usageType=VOICE&fields=status").await;
        assert_eq!(filtered.values_of("href"), vec![href.clone()]);
        assert_eq!(
            app.read(&format!("/usage/{id}?fields=usageType")).await["href"],
            href
        );
    }

    async fn reads_by_id_go_on_after_the_database_ends_its_sessions(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let path = format!("/usage/{id}");
        // Several reads at once, so several connections are kept for reads.
        join_all((0..8).map(|_| app.read(&path))).await;
        app.end_database_sessions().await;
        for _ in 0..3 {
            assert_eq!(app.read(&path).await, created);
        }
    }

    async fn updates_go_on_after_the_database_ends_its_sessions(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        join_all((0..8).map(|_| app.read(&path))).await;
        app.end_database_sessions().await;
        for status in ["rated", "billed"] {
            let patched = app.patch_ok(&path, &json!({"status": status})).await;
            assert_eq!(patched["status"], status);
        }
        assert_eq!(app.read(&path).await["status"], "billed");
    }

    async fn creates_and_lists_go_on_after_the_database_ends_its_sessions(app) {
        let first = id_of(&app.create("/usage", &voice_usage()).await);
        join_all((0..8).map(|_| app.list("/usage?limit=1"))).await;
        app.end_database_sessions().await;
        let mut ids = vec![first];
        for _ in 0..3 {
            ids.push(id_of(&app.create("/usage", &voice_usage()).await));
        }
        app.end_database_sessions().await;
        let listed = app.list("/usage?fields=id").await;
        let listed: Vec<String> = listed.items.iter().map(id_of).collect();
        assert_eq!(sorted(listed), sorted(ids));
    }

    async fn list_answers_every_usage_with_both_count_headers(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "received"),
                usage("DATA", "rated"),
                usage("SMS", "billed"),
            ],
        )
        .await;
        let listing = app.list("/usage").await;
        assert_eq!(listing.status, StatusCode::OK);
        assert_eq!(listing.total, 3);
        assert_eq!(listing.count, 3);
        assert_eq!(sorted(listing.ids()), sorted(ids));
    }

    async fn an_empty_list_is_200_with_zero_counts(app) {
        let listing = app.list("/usage").await;
        assert_eq!(listing.status, StatusCode::OK);
        assert_eq!((listing.total, listing.count), (0, 0));
        assert!(listing.items.is_empty());
    }

    async fn the_default_order_is_newest_first(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "received"),
                usage("VOICE", "received"),
                usage("VOICE", "received"),
                usage("VOICE", "received"),
            ],
        )
        .await;
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(app.list("/usage").await.ids(), newest_first);
    }

    async fn pages_do_not_overlap_and_cover_every_usage(app) {
        let bodies: Vec<Value> = (0..7).map(|_| usage("DATA", "rated")).collect();
        let ids = create_all(&app, &bodies).await;
        let mut seen = Vec::new();
        for (offset, expected_count) in [(0, 3), (3, 3), (6, 1)] {
            let page = app.list(&format!("/usage?offset={offset}&limit=3")).await;
            assert_eq!(page.total, 7, "the total counts every usage, not the page");
            assert_eq!(page.count, expected_count, "page at offset {offset}");
            assert_eq!(
                page.status,
                StatusCode::PARTIAL_CONTENT,
                "a page of a longer list"
            );
            for id in page.ids() {
                assert!(!seen.contains(&id), "{id} is on two pages");
                seen.push(id);
            }
        }
        // The pages, one after the other, are the whole list in its order.
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first);
    }

    async fn a_limit_larger_than_the_list_answers_everything(app) {
        create_all(&app, &[usage("VOICE", "rated"), usage("DATA", "rated")]).await;
        let page = app.list("/usage?limit=50").await;
        assert_eq!((page.total, page.count), (2, 2));
        assert_eq!(page.status, StatusCode::OK, "the page holds every match");
    }

    async fn limit_zero_and_an_offset_past_the_end_answer_no_items_but_the_total(app) {
        create_all(&app, &[usage("VOICE", "rated"), usage("DATA", "rated")]).await;
        let page = app.list("/usage?limit=0").await;
        assert_eq!((page.total, page.count), (2, 0));
        let page = app.list("/usage?offset=5").await;
        assert_eq!((page.total, page.count), (2, 0));
        let page = app.list("/usage?offset=1&limit=10").await;
        assert_eq!((page.total, page.count), (2, 1));
    }

    async fn the_total_counts_the_matches_of_the_filter_across_pages(app) {
        create_all(
            &app,
            &[
                usage("VOICE", "rated"),
                usage("VOICE", "rated"),
                usage("VOICE", "rated"),
                usage("DATA", "rated"),
                usage("SMS", "billed"),
            ],
        )
        .await;
        let page = app.list("/usage?usageType=VOICE&limit=2").await;
        assert_eq!(page.total, 3);
        assert_eq!(page.count, 2);
        assert!(page.items.iter().all(|u| u["usageType"] == "VOICE"));
        let rest = app.list("/usage?usageType=VOICE&offset=2&limit=2").await;
        assert_eq!((rest.total, rest.count), (3, 1));
        assert_eq!(rest.items[0]["usageType"], "VOICE");
    }

    async fn filter_by_id(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "rated"),
                usage("DATA", "rated"),
                usage("SMS", "rated"),
            ],
        )
        .await;
        let one = app.list(&format!("/usage?id={}", ids[1])).await;
        assert_eq!(one.ids(), vec![ids[1].clone()]);
        assert_eq!(one.total, 1);
        assert_eq!(one.items[0]["usageType"], "DATA");
        let two = app.list(&format!("/usage?id={},{}", ids[0], ids[2])).await;
        assert_eq!(
            sorted(two.ids()),
            sorted(vec![ids[0].clone(), ids[2].clone()])
        );
        let none = app.list("/usage?id=no-such-id").await;
        assert_eq!((none.total, none.count), (0, 0));
    }

    async fn filter_by_status(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "received"),
                usage("VOICE", "rated"),
                usage("DATA", "billed"),
                usage("DATA", "rated"),
            ],
        )
        .await;
        let rated = app.list("/usage?status=rated").await;
        assert_eq!(
            sorted(rated.ids()),
            sorted(vec![ids[1].clone(), ids[3].clone()])
        );
        assert_eq!(rated.total, 2);
        assert!(rated.items.iter().all(|u| u["status"] == "rated"));
        let rejected = app.list("/usage?status=rejected").await;
        assert_eq!(rejected.total, 0);
    }

    async fn filter_by_usage_type(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "received"),
                usage("DATA", "received"),
                usage("SMS", "received"),
            ],
        )
        .await;
        let data = app.list("/usage?usageType=DATA").await;
        assert_eq!(data.ids(), vec![ids[1].clone()]);
        assert_eq!(data.total, 1);
        // Values compare exactly: no prefix, no case folding.
        assert_eq!(app.total("/usage?usageType=DAT").await, 0);
        assert_eq!(app.total("/usage?usageType=data").await, 0);
    }

    async fn a_comma_list_of_values_is_an_or(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "received"),
                usage("VOICE", "rated"),
                usage("VOICE", "billed"),
                usage("VOICE", "guided"),
            ],
        )
        .await;
        let listing = app.list("/usage?status=rated,billed").await;
        assert_eq!(
            sorted(listing.ids()),
            sorted(vec![ids[1].clone(), ids[2].clone()])
        );
        assert_eq!(listing.total, 2);
        let types = app.list("/usage?usageType=VOICE,FAX").await;
        assert_eq!(types.total, 4);
    }

    async fn several_filters_are_anded(app) {
        let ids = create_all(
            &app,
            &[
                usage("VOICE", "rated"),
                usage("DATA", "rated"),
                usage("DATA", "billed"),
                usage("SMS", "rated"),
            ],
        )
        .await;
        let listing = app.list("/usage?status=rated&usageType=DATA").await;
        assert_eq!(listing.ids(), vec![ids[1].clone()]);
        let listing = app
            .list("/usage?status=rated,billed&usageType=DATA,SMS")
            .await;
        assert_eq!(
            sorted(listing.ids()),
            sorted(vec![ids[1].clone(), ids[2].clone(), ids[3].clone()])
        );
        let listing = app
            .list(&format!("/usage?id={}&status=billed", ids[0]))
            .await;
        assert_eq!(listing.total, 0);
    }

    async fn filter_by_usage_date_compares_instants_whatever_the_offset(app) {
        let mut morning = usage("VOICE", "rated");
        morning["usageDate"] = json!("2020-09-21T09:13:16-07:00"); // 16:13:16Z
        let mut evening = usage("VOICE", "rated");
        evening["usageDate"] = json!("2020-09-22T00:00:00+02:00"); // 22:00:00Z the day before
        let mut later = usage("VOICE", "rated");
        later["usageDate"] = json!("2020-09-22T08:30:00.250Z");
        let ids = create_all(&app, &[morning, evening, later]).await;
        let at = app.list("/usage?usageDate=2020-09-21T16:13:16Z").await;
        assert_eq!(at.ids(), vec![ids[0].clone()]);
        let after = app.list("/usage?usageDate.gt=2020-09-21T16:13:16Z").await;
        assert_eq!(
            sorted(after.ids()),
            sorted(vec![ids[1].clone(), ids[2].clone()])
        );
        let before = app
            .list("/usage?usageDate.lt=2020-09-21T23:00:00%2B01:00")
            .await;
        assert_eq!(before.ids(), vec![ids[0].clone()]);
        let between = app
            .list(
                "/usage?usageDate.gte=2020-09-21T22:00:00Z&usageDate.lte=2020-09-22T08:30:00.250Z",
            )
            .await;
        assert_eq!(
            sorted(between.ids()),
            sorted(vec![ids[1].clone(), ids[2].clone()])
        );
    }

    async fn fields_on_a_list_answer_only_those_attributes_plus_id_and_href(app) {
        let full = app.create("/usage", &voice_usage()).await;
        let mut bare = usage("SMS", "received");
        bare.as_object_mut().unwrap().remove("usageType");
        let bare = app.create("/usage", &bare).await;
        let listing = app.list("/usage?fields=status,usageType").await;
        assert_eq!(listing.total, 2);
        for item in &listing.items {
            if item["id"] == full["id"] {
                assert_eq!(keys_of(item), ["href", "id", "status", "usageType"]);
                assert_eq!(item["status"], "rated");
                assert_eq!(item["usageType"], "VOICE");
                assert_eq!(item["href"], full["href"]);
            } else {
                assert_eq!(item["id"], bare["id"]);
                assert_eq!(
                    keys_of(item),
                    ["href", "id", "status"],
                    "an absent attribute stays absent"
                );
            }
        }
        // Objects and arrays come whole.
        let listing = app
            .list(&format!(
                "/usage?id={}&fields=relatedParty,usageSpecification",
                id_of(&full)
            ))
            .await;
        assert_eq!(
            keys_of(&listing.items[0]),
            ["href", "id", "relatedParty", "usageSpecification"]
        );
        assert_eq!(listing.items[0]["relatedParty"], full["relatedParty"]);
        assert_eq!(
            listing.items[0]["usageSpecification"],
            full["usageSpecification"]
        );
    }

    async fn fields_on_retrieve_answer_only_those_attributes_plus_id_and_href(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let read = app
            .read(&format!("/usage/{id}?fields=description,ratedProductUsage"))
            .await;
        assert_eq!(
            keys_of(&read),
            ["description", "href", "id", "ratedProductUsage"]
        );
        assert_eq!(read["ratedProductUsage"], created["ratedProductUsage"]);
        assert_eq!(read["description"], created["description"]);
        assert_eq!(read["href"], created["href"]);
        let only_id = app.read(&format!("/usage/{id}?fields=id")).await;
        assert_eq!(keys_of(&only_id), ["href", "id"]);
    }

    async fn patch_answers_the_whole_updated_usage(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let patched = app
            .patch_ok(
                &format!("/usage/{id}"),
                &json!({"status": "billed", "description": "Billed on invoice INV-2020-09"}),
            )
            .await;
        let mut expected = created.clone();
        expected["status"] = json!("billed");
        expected["description"] = json!("Billed on invoice INV-2020-09");
        assert_eq!(patched, expected);
        assert_eq!(
            app.read(&format!("/usage/{id}")).await,
            expected,
            "the change is stored"
        );
        assert_eq!(
            app.total("/usage?status=billed").await,
            1,
            "and filters see it"
        );
        assert_eq!(app.total("/usage?status=rated").await, 0);
    }

    async fn patch_accepts_merge_patch_json(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let response = app
            .send_raw(
                Method::PATCH,
                &format!("/usage/{id}"),
                Some("application/merge-patch+json"),
                r#"{"status":"guided"}"#,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json_body(response).await["status"], "guided");
        assert_eq!(app.read(&format!("/usage/{id}")).await["status"], "guided");
    }

    async fn patch_with_null_removes_the_attribute(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let patched = app
            .patch_ok(
                &format!("/usage/{id}"),
                &json!({"description": null, "roamingZone": null}),
            )
            .await;
        assert!(patched.get("description").is_none(), "{patched}");
        assert!(patched.get("roamingZone").is_none(), "{patched}");
        assert_eq!(patched["status"], "rated", "the rest stays");
        let read = app.read(&format!("/usage/{id}")).await;
        assert_eq!(read, patched);
        let mut expected = created.clone();
        expected.as_object_mut().unwrap().remove("description");
        expected.as_object_mut().unwrap().remove("roamingZone");
        assert_eq!(read, expected);
    }

    async fn patch_replaces_arrays_whole(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let parties = json!([{"id": "new-party", "role": "user", "@referredType": "Individual"}]);
        let characteristics = json!([{"name": "duration", "valueType": "integer", "value": 95}]);
        let patched = app
            .patch_ok(
                &format!("/usage/{id}"),
                &json!({"relatedParty": parties, "usageCharacteristic": characteristics}),
            )
            .await;
        assert_eq!(
            patched["relatedParty"], parties,
            "not merged with the two old parties"
        );
        assert_eq!(patched["usageCharacteristic"], characteristics);
        assert_eq!(patched["ratedProductUsage"], created["ratedProductUsage"]);
        assert_eq!(app.read(&format!("/usage/{id}")).await, patched);
        let emptied = app
            .patch_ok(&format!("/usage/{id}"), &json!({"relatedParty": []}))
            .await;
        assert_eq!(emptied["relatedParty"], json!([]));
    }

    async fn patch_merges_nested_objects(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let patched = app
            .patch_ok(
                &format!("/usage/{id}"),
                &json!({"usageSpecification": {"id": "af59-340e", "name": "CallSpec v2", "href": null, "@type": "UsageSpecificationRef"}}),
            )
            .await;
        assert_eq!(
            patched["usageSpecification"],
            json!({
                "id": "af59-340e",
                "name": "CallSpec v2",
                "@referredType": "UsageSpecification",
                "@type": "UsageSpecificationRef"
            })
        );
        assert_eq!(app.read(&format!("/usage/{id}")).await, patched);
    }

    async fn an_empty_patch_changes_nothing(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        assert_eq!(
            app.patch_ok(&format!("/usage/{id}"), &json!({})).await,
            created
        );
        assert_eq!(app.read(&format!("/usage/{id}")).await, created);
    }

    async fn patching_id_or_href_is_422_and_changes_nothing(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let path = format!("/usage/{id}");
        let message = assert_tmf_error(
            app.patch(&path, &json!({"id": "another-id", "status": "billed"}))
                .await,
            422,
        )
        .await;
        assert!(message.contains("id"), "{message}");
        let message = assert_tmf_error(
            app.patch(
                &path,
                &json!({"href": "http://elsewhere.example.com/usage/1"}),
            )
            .await,
            422,
        )
        .await;
        assert!(message.contains("href"), "{message}");
        assert_eq!(app.read(&path).await, created);
        assert_tmf_error(app.get("/usage/another-id").await, 404).await;
    }

    async fn patch_of_an_unknown_id_is_404(app) {
        app.create("/usage", &voice_usage()).await;
        let message = assert_tmf_error(
            app.patch("/usage/no-such-usage", &json!({"status": "billed"}))
                .await,
            404,
        )
        .await;
        assert!(message.contains("no-such-usage"), "{message}");
        assert_eq!(app.total("/usage?status=billed").await, 0);
    }

    async fn an_invalid_patched_value_is_400_and_changes_nothing(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let path = format!("/usage/{id}");
        for patch in [
            json!({"status": "nope", "description": "should not be stored"}),
            json!({"usageDate": "yesterday", "description": "should not be stored"}),
            json!({"usageCharacteristic": [{"name": "duration"}], "description": "should not be stored"}),
            json!({"relatedParty": [{"role": "customer", "@referredType": "Individual"}]}),
            json!({"ratedProductUsage": [{"taxRate": "twenty"}]}),
            json!({"usageSpecification": "af59-340e"}),
        ] {
            assert_tmf_error(app.patch(&path, &patch).await, 400).await;
            assert_eq!(app.read(&path).await, created, "after PATCH {patch}");
        }
    }

    async fn a_patch_that_leaves_the_usage_invalid_is_400_and_changes_nothing(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let id = id_of(&created);
        let path = format!("/usage/{id}");
        // Valid as a patch, but the merged usageSpecification would lose its required id.
        assert_tmf_error(
            app.patch(&path, &json!({"usageSpecification": {"id": null}}))
                .await,
            400,
        )
        .await;
        assert_eq!(app.read(&path).await, created);
    }

    async fn concurrent_creations_all_succeed(app) {
        let bodies: Vec<Value> = (0..16)
            .map(|i| usage(&format!("TYPE{i}"), "received"))
            .collect();
        let answers = join_all(bodies.iter().map(|b| app.post("/usage", b))).await;
        let mut ids = Vec::new();
        for response in answers {
            assert_eq!(response.status(), StatusCode::CREATED);
            ids.push(id_of(&json_body(response).await));
        }
        let listing = app.list("/usage").await;
        assert_eq!(listing.total, 16);
        assert_eq!(sorted(listing.ids()), sorted(ids));
    }

    async fn concurrent_patches_of_one_usage_are_all_applied(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let path = format!("/usage/{}", id_of(&created));
        let patches: Vec<Value> = (0..12)
            .map(|i| json!({format!("extension{i}"): i}))
            .collect();
        let answers = join_all(patches.iter().map(|p| app.patch(&path, p))).await;
        for response in answers {
            let status = response.status();
            assert_eq!(
                status,
                StatusCode::OK,
                "{}",
                response.text().await.unwrap_or_default()
            );
        }
        let read = app.read(&path).await;
        for i in 0..12 {
            assert_eq!(
                read[format!("extension{i}")],
                i,
                "patch {i} was kept: {read}"
            );
        }
        assert_eq!(read["relatedParty"], created["relatedParty"]);
    }

    async fn delete_answers_204_then_the_usage_is_gone(app) {
        let created = app.create("/usage", &voice_usage()).await;
        let kept = app.create("/usage", &usage("DATA", "rated")).await;
        let id = id_of(&created);
        let path = format!("/usage/{id}");
        let response = app.delete(&path).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(
            response.bytes().await.unwrap().is_empty(),
            "no body with 204"
        );
        assert_tmf_error(app.get(&path).await, 404).await;
        assert_tmf_error(app.patch(&path, &json!({"status": "billed"})).await, 404).await;
        assert_tmf_error(app.delete(&path).await, 404).await;
        let listing = app.list("/usage").await;
        assert_eq!(
            listing.ids(),
            vec![id_of(&kept)],
            "only the other usage is left"
        );
        assert_eq!(app.total(&format!("/usage?id={id}")).await, 0);
    }
}

/// `TMF635_PUBLIC_URL`: hrefs name the public URL instead of the address the request came to.
mod public_url {
    use super::*;
    use crate::helpers::Listing;

    fn public_href(id: &str) -> String {
        format!("https://usage.example.com/tmf-api/usageManagement/v4/usage/{id}")
    }

    fn check(listing: &Listing, id: &str) {
        assert_eq!(listing.values_of("href"), vec![json!(public_href(id))]);
    }

    backend_tests_with! {
        |c: &mut tmf635::Config| c.public_url = Some("https://usage.example.com/".into());

        async fn hrefs_use_the_public_url(app) {
            let created = app.create("/usage", &voice_usage()).await;
            let id = id_of(&created);
            assert_eq!(created["href"], public_href(&id));
            assert_eq!(
                app.read(&format!("/usage/{id}")).await["href"],
                public_href(&id)
            );
            check(&app.list("/usage").await, &id);
            check(
                &app.list(&format!("/usage?id={id}&fields=status")).await,
                &id,
            );
            let patched = app
                .patch_ok(&format!("/usage/{id}"), &json!({"status": "billed"}))
                .await;
            assert_eq!(patched["href"], public_href(&id));
        }
    }
}

/// Behind a proxy the settings say sets `X-Forwarded-*`, hrefs follow those headers; without
/// that setting, anyone could decide every href with them, so they are ignored.
mod forwarded_headers {
    use super::*;

    backend_tests! {
        async fn forwarded_headers_are_ignored_unless_trusted(app) {
            let created = app.create("/usage", &voice_usage()).await;
            let id = id_of(&created);
            let response = app
                .client
                .get(app.url(&format!("/usage/{id}")))
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "attacker.example")
                .send()
                .await
                .expect("answered");
            assert_eq!(json_body(response).await["href"], app.href("usage", &id).as_str());
        }
    }

    mod trusted {
        use super::*;

        backend_tests_with! {
                |config: &mut tmf635::Config| config.trust_forwarded_headers = true;

        async fn href_follows_the_address_each_read_came_to(app) {
                    let created = app.create("/usage", &voice_usage()).await;
                    let id = id_of(&created);
                    let as_stored = app.href("usage", &id);
                    let over_https = as_stored.replacen("http://", "https://", 1);
                    let read_over_https = |path: String| {
                        let request = app.client.get(app.url(&path));
                        async move {
                            let response = request
                                .header("x-forwarded-proto", "https")
                                .send()
                                .await
                                .expect("answered");
                            assert_eq!(response.status(), StatusCode::OK);
                            json_body(response).await
                        }
                    };
                    let read = read_over_https(format!("/usage/{id}")).await;
                    assert_eq!(read["href"], over_https.as_str());
                    assert_eq!(read["id"], id.as_str());
                    let listed = read_over_https(format!("/usage?id={id}")).await;
                    assert_eq!(listed[0]["href"], over_https.as_str());
                    // The rest of the document is the same either way, and plain reads keep the stored href.
                    let plain = app.read(&format!("/usage/{id}")).await;
                    assert_eq!(plain["href"], as_stored.as_str());
                    let mut expected = plain.clone();
                    expected["href"] = json!(over_https);
                    assert_eq!(read, expected);
                    assert_eq!(keys_of(&read), keys_of(&plain));
                }
            }
    }
}
