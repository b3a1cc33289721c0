//! The array-value index behind `relatedParty.id` and `ratedProductUsage.productRef.id`
//! filters: lists it answers (a value plus a usageDate range, sorted by usageDate) give the same
//! items, order and counts as the general query, it follows every write, and usages stored
//! before it existed are indexed by its migration.

use crate::backend_tests;
use crate::helpers::{id_of, older_schema, Backend, TestApp};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{json, Value};

/// A seeded usage: its id, parties and instant (day, hour) of usageDate (None: no date).
struct Seeded {
    id: String,
    parties: Vec<String>,
    at: Option<(u32, u32)>,
}

/// 40 usages over 4 days with many equal instants (so ties are broken by id), some written
/// with a +02:00 offset, some listing the same party twice, one without usageDate.
async fn seed(app: &TestApp) -> Vec<Seeded> {
    let mut seeded = Vec::new();
    for i in 0..40u32 {
        let (day, hour) = (1 + i % 4, i % 3);
        let date = if i % 6 == 0 {
            format!("2024-05-0{day}T0{}:00:00+02:00", hour + 2)
        } else {
            format!("2024-05-0{day}T0{hour}:00:00Z")
        };
        let customer = format!("p{}", i % 5);
        let user = if i % 7 == 0 {
            customer.clone()
        } else {
            format!("p{}", (i + 1) % 5)
        };
        let mut body = json!({
            "usageType": "VOICE",
            "status": "rated",
            "relatedParty": [
                {"id": customer, "role": "customer", "@referredType": "Individual"},
                {"id": user, "role": "user", "@referredType": "Individual"}
            ],
            "ratedProductUsage": [{"productRef": {"id": format!("prod-{}", i % 3)}}]
        });
        if i != 39 {
            body["usageDate"] = json!(date);
        }
        let created = app.create("/usage", &body).await;
        seeded.push(Seeded {
            id: id_of(&created),
            parties: vec![customer, user],
            at: (i != 39).then_some((day, hour)),
        });
    }
    seeded
}

/// The ids a list of `parties` in days [from, to) sorted by usageDate (and id the same way)
/// must answer.
fn expected(seeded: &[Seeded], parties: &[&str], from: u32, to: u32, desc: bool) -> Vec<String> {
    let mut rows: Vec<(&(u32, u32), &String)> = seeded
        .iter()
        .filter(|s| s.parties.iter().any(|p| parties.contains(&p.as_str())))
        .filter_map(|s| s.at.as_ref().map(|at| (at, &s.id)))
        .filter(|((day, _), _)| (from..to).contains(day))
        .collect();
    rows.sort();
    if desc {
        rows.reverse();
    }
    rows.into_iter().map(|(_, id)| id.clone()).collect()
}

/// Every page of `query` (limit 4), with the total each page reported.
async fn all_pages(app: &TestApp, query: &str) -> (Vec<String>, Vec<u64>) {
    let (mut ids, mut totals) = (Vec::new(), Vec::new());
    for offset in (0..).step_by(4) {
        let page = app
            .list(&format!("/usage?{query}&offset={offset}&limit=4"))
            .await;
        totals.push(page.total);
        if page.items.is_empty() {
            break;
        }
        ids.extend(page.ids());
    }
    (ids, totals)
}

fn range(from: u32, to: u32) -> String {
    format!("usageDate.gte=2024-05-0{from}T00:00:00Z&usageDate.lt=2024-05-0{to}T00:00:00Z")
}

backend_tests! {
    async fn index_answers_value_and_date_range_like_the_general_query(app) {
        let seeded = seed(&app).await;
        for (parties, from, to) in [("p1", 2, 4), ("p0", 1, 5), ("p3", 4, 5), ("p2,p4", 1, 3), ("p9", 1, 5)] {
            let wanted: Vec<&str> = parties.split(',').collect();
            for desc in [true, false] {
                let sign = if desc { "-" } else { "" };
                let filter = format!("relatedParty.id={parties}&{}", range(from, to));
                // Answered by the index alone.
                let (ids, totals) = all_pages(&app, &format!("{filter}&sort={sign}usageDate")).await;
                let expect = expected(&seeded, &wanted, from, to, desc);
                assert_eq!(ids, expect, "{filter} sort={sign}usageDate");
                assert!(totals.iter().all(|&t| t == expect.len() as u64), "{filter}: totals {totals:?}");
                // The same list by the general query (a second sort key).
                let (general, _) = all_pages(&app, &format!("{filter}&sort={sign}usageDate,{sign}id")).await;
                assert_eq!(general, expect, "{filter} sort={sign}usageDate,{sign}id");
            }
        }
        // Through the index with other conditions beside it.
        let listing = app
            .list(&format!("/usage?relatedParty.id=p1&relatedParty.role=customer&{}&sort=-usageDate", range(1, 5)))
            .await;
        let customers: Vec<&String> = seeded.iter().filter(|s| s.parties[0] == "p1" && s.at.is_some()).map(|s| &s.id).collect();
        assert_eq!(listing.total, customers.len() as u64);
        assert!(listing.ids().iter().all(|id| customers.contains(&id)));
        let listing = app.list("/usage?ratedProductUsage.productRef.id=prod-2&limit=1000").await;
        assert_eq!(listing.total, 13, "every third of 40 usages has prod-2");
        // The usage without usageDate is found when no date is asked.
        let listing = app.list("/usage?relatedParty.id=p4&limit=1000").await;
        assert!(listing.ids().contains(&seeded[39].id));
    }

    async fn newest_first_lists_walk_or_use_the_index_with_the_same_answer(app) {
        let seeded = seed(&app).await;
        for filter in [
            "relatedParty.id=p1",
            "relatedParty.id=p2,p4",
            "relatedParty.id=p3&status=rated",
            "relatedParty.id=p0&relatedParty.role=user",
            &format!("relatedParty.id=p2&{}", range(2, 4)),
            "ratedProductUsage.productRef.id=prod-1",
            "relatedParty.id=p9",
        ] {
            // Pages of 4 among 40 usages, a value on about 1 in 3: walking the table newest
            // first reaches a page's end sooner than reading every match, so these walk.
            let (walked, totals) = all_pages(&app, filter).await;
            // A page of 1000 is cheaper read from the index: every match, then sorted.
            let whole = app.list(&format!("/usage?{filter}&limit=1000")).await;
            assert_eq!(walked, whole.ids(), "{filter}");
            assert!(totals.iter().all(|&t| t == whole.total), "{filter}: totals {totals:?}");
            assert_eq!(whole.total, whole.items.len() as u64, "{filter}");
        }
        // Both answer what was stored, newest first.
        let newest_first: Vec<String> = seeded
            .iter()
            .rev()
            .filter(|s| s.parties.iter().any(|p| p == "p1"))
            .map(|s| s.id.clone())
            .collect();
        let (walked, _) = all_pages(&app, "relatedParty.id=p1").await;
        assert_eq!(walked, newest_first);
    }

    async fn index_follows_creates_patches_and_deletes(app) {
        let created = app
            .create("/usage", &json!({
                "usageDate": "2024-06-10T10:00:00Z",
                "relatedParty": [{"id": "alice", "role": "customer", "@referredType": "Individual"}]
            }))
            .await;
        let id = id_of(&created);
        let june = "usageDate.gte=2024-06-01T00:00:00Z&usageDate.lt=2024-07-01T00:00:00Z&sort=-usageDate";
        let july = "usageDate.gte=2024-07-01T00:00:00Z&usageDate.lt=2024-08-01T00:00:00Z&sort=-usageDate";
        let found = |party: &'static str, range: &'static str| {
            let app = &app;
            async move { app.list(&format!("/usage?relatedParty.id={party}&{range}")).await.ids() }
        };
        assert_eq!(found("alice", june).await, vec![id.clone()]);

        let patched = app.patch(&format!("/usage/{id}"), &json!({"relatedParty": [{"id": "bob", "role": "customer", "@referredType": "Individual"}]})).await;
        assert_eq!(patched.status(), 200);
        assert!(found("alice", june).await.is_empty(), "alice is no longer a party");
        assert_eq!(found("bob", june).await, vec![id.clone()]);

        let patched = app.patch(&format!("/usage/{id}"), &json!({"usageDate": "2024-07-02T00:00:00+02:00"})).await;
        assert_eq!(patched.status(), 200);
        assert!(found("bob", june).await.is_empty(), "2024-07-01T22:00Z is in July");
        assert_eq!(found("bob", july).await, vec![id.clone()]);

        let patched = app.patch(&format!("/usage/{id}"), &json!({"status": "billed"})).await;
        assert_eq!(patched.status(), 200);
        let listing = app.list(&format!("/usage?relatedParty.id=bob&{july}")).await;
        assert_eq!(listing.items[0]["status"], json!("billed"));

        assert_eq!(app.delete(&format!("/usage/{id}")).await.status(), 204);
        let listing = app.list(&format!("/usage?relatedParty.id=bob&{july}")).await;
        assert_eq!((listing.total, listing.items.len()), (0, 0));
    }
}

/// A usage written by an older version (schema of the first migration only) is found through
/// the index after the server has migrated the database.
async fn usages_stored_before_the_index_are_indexed_by_its_migration(backend: Backend) {
    let document = json!({
        "id": "old-1",
        "href": "http://old/tmf-api/usageManagement/v4/usage/old-1",
        "usageDate": "2024-05-01T12:00:00Z",
        "relatedParty": [{"id": "legacy", "role": "customer"}, {"id": "legacy", "role": "user"}],
        "ratedProductUsage": [{"productRef": {"id": "prod-legacy"}}, {"taxRate": 0.2}]
    });
    let row = document.clone();
    let prepared = TestApp::spawn_prepared(
        backend,
        |_| {},
        |url| async move {
            let db = older_schema(&url, 1).await;
            let at = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("a date");
            entity::usage::Entity::insert(entity::usage::ActiveModel {
                // The column comes with a later migration than this schema's.
                tenant: sea_orm::ActiveValue::NotSet,
                id: Set("old-1".into()),
                revision: Set(1),
                created_at: Set(at.into()),
                usage_date: Set(Some(at.into())),
                usage_type: Set(None),
                status: Set(None),
                description: Set(None),
                usage_specification_id: Set(None),
                at_type: Set(None),
                document: Set(row),
            })
            .exec_without_returning(&db)
            .await
            .expect("an old usage");
            db.close().await.expect("closed");
        },
    )
    .await;
    let Some(app) = prepared else { return };
    let day =
        "usageDate.gte=2024-05-01T00:00:00Z&usageDate.lt=2024-05-02T00:00:00Z&sort=-usageDate";
    let listing = app
        .list(&format!("/usage?relatedParty.id=legacy&{day}"))
        .await;
    assert_eq!(
        (listing.total, listing.ids()),
        (1, vec!["old-1".to_string()])
    );
    let listing = app
        .list("/usage?ratedProductUsage.productRef.id=prod-legacy")
        .await;
    assert_eq!(listing.ids(), vec!["old-1".to_string()]);
    assert_eq!(listing.items[0]["relatedParty"], document["relatedParty"]);
    let listing: Value = app
        .get("/usage?relatedParty.id=nobody")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listing, json!([]));
}

#[tokio::test]
async fn sqlite_usages_stored_before_the_index_are_indexed_by_its_migration() {
    usages_stored_before_the_index_are_indexed_by_its_migration(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_usages_stored_before_the_index_are_indexed_by_its_migration() {
    usages_stored_before_the_index_are_indexed_by_its_migration(Backend::Postgres).await;
}
