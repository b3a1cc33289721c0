//! Usages and usage specifications: another tenant's are not found by id, not patched or
//! deleted, not listed, counted, linked to or found by a filter, and an imported id another
//! tenant holds too is a usage of its own.

use crate::bulk::{import, NDJSON};
use crate::fixtures::{specification, usage, voice_usage};
use crate::helpers::{assert_tmf_error, id_of, json_body, Api};
use serde_json::json;

/// The lists and filters that find `a`'s usages (created by `a_usages`), each by another
/// path through the store: plain, typed column, nested attribute in the document, the
/// array-value index (alone, with a date range, sorted by date: the index scan), `fields`.
const USAGE_QUERIES: [&str; 9] = [
    "",
    "?usageType=VOICE",
    "?usageCharacteristic.name=originatingCountryCode",
    "?relatedParty.id=45hj-8888",
    "?relatedParty.id=45hj-8888&relatedParty.role=customer",
    "?ratedProductUsage.productRef.id=1234-1234&usageDate.gte=2020-01-01T00:00:00Z",
    "?relatedParty.id=45hj-8888&usageDate.gte=2020-01-01T00:00:00Z&sort=-usageDate",
    "?fields=usageType,relatedParty",
    "?sort=usageDate&limit=1",
];

/// Three voice usages of `a`; answers their ids.
async fn a_usages(a: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&a.create("/usage", &voice_usage()).await));
    }
    ids
}

/// `GET path` answers an empty list: no items, `X-Total-Count: 0`, and a `Link` to no page
/// but the first.
async fn assert_empty(api: &Api, path: &str) {
    let response = api.get(path).await;
    let link = response
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default();
    assert!(
        link.split("offset=").skip(1).all(|o| o.starts_with("0&")),
        "GET {path}: a Link past the first page: {link}"
    );
    let listing = api.list(path).await;
    assert_eq!(
        (listing.total, listing.items.len()),
        (0, 0),
        "GET {path}: {:?}",
        listing.items
    );
}

crate::tenancy_tests! {
    async fn another_tenants_usages_do_not_exist(t) {
        let ids = a_usages(&t.a).await;
        for query in USAGE_QUERIES {
            let path = format!("/usage{query}");
            assert!(t.a.list(&path).await.total > 0, "a finds its usages: {path}");
            assert_empty(&t.b, &path).await;
            assert_empty(&t.b_key, &path).await;
        }
        let id = &ids[0];
        let path = format!("/usage/{id}");
        let before = t.a.read(&path).await;
        assert_tmf_error(t.b.get(&path).await, 404).await;
        assert_tmf_error(t.b.get(&format!("{path}?fields=usageType")).await, 404).await;
        assert_tmf_error(t.b.patch(&path, &json!({"status": "billed"})).await, 404).await;
        assert_tmf_error(t.b_key.delete(&path).await, 404).await;
        assert_tmf_error(t.b.delete(&path).await, 404).await;
        assert_eq!(t.a.read(&path).await, before, "untouched by b");
        assert_eq!(t.a.total("/usage").await, 3);
    }

    async fn counts_and_links_are_the_tenants_own(t) {
        a_usages(&t.a).await;
        let mine = id_of(&t.b.create("/usage", &usage("DATA", "rated")).await);
        for api in [&t.b, &t.b_key] {
            let response = api.get("/usage?limit=1").await;
            let link = response.headers().get("link").map(|l| l.to_str().unwrap_or_default().to_string());
            assert!(link.as_deref().is_none_or(|l| !l.contains("rel=\"next\"")), "no next page: {link:?}");
            let listing = api.list("/usage?limit=1").await;
            assert_eq!((listing.total, listing.ids()), (1, vec![mine.clone()]));
        }
        // a's own pages link on as before.
        let response = t.a.get("/usage?limit=1").await;
        let link = response.headers().get("link").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
        assert!(link.contains("rel=\"next\""), "{link}");
        assert_eq!(t.a.total("/usage").await, 3);
        // b's change events say nothing of a: a's usage is as it was, b's is patched.
        t.b.patch_ok(&format!("/usage/{mine}"), &json!({"status": "billed"})).await;
        assert_eq!(t.a.total("/usage?status=billed").await, 0);
        assert_eq!(t.b.total("/usage?status=billed").await, 1);
    }

    async fn another_tenants_specifications_do_not_exist(t) {
        let spec = t.a.create("/usageSpecification", &specification("calls", "active")).await;
        let path = format!("/usageSpecification/{}", id_of(&spec));
        for query in ["", "?name=calls", "?lifecycleStatus=active", "?fields=name"] {
            let list = format!("/usageSpecification{query}");
            assert_eq!(t.a.total(&list).await, 1, "{list}");
            assert_empty(&t.b, &list).await;
        }
        assert_tmf_error(t.b.get(&path).await, 404).await;
        assert_tmf_error(t.b.patch(&path, &json!({"description": "taken"})).await, 404).await;
        assert_tmf_error(t.b_key.delete(&path).await, 404).await;
        assert_eq!(t.a.read(&path).await, spec);
    }

    async fn an_imported_id_is_per_tenant(t) {
        let row = |usage_type: &str| {
            let mut row = usage(usage_type, "rated");
            row["id"] = json!("shared-1");
            row.to_string()
        };
        let job = import(&t.a, NDJSON, row("VOICE")).await;
        assert_eq!((job["rowsCreated"].clone(), job["rowsSkipped"].clone()), (json!(1), json!(0)), "{job}");
        // b's row of the same id is created, not skipped: nothing says a has one.
        let job = import(&t.b_key, NDJSON, row("DATA")).await;
        assert_eq!((job["rowsCreated"].clone(), job["rowsSkipped"].clone()), (json!(1), json!(0)), "{job}");
        // Imported again, each is skipped within its own tenant.
        let job = import(&t.b, NDJSON, row("SMS")).await;
        assert_eq!((job["rowsCreated"].clone(), job["rowsSkipped"].clone()), (json!(0), json!(1)), "{job}");
        assert_eq!(t.a.read("/usage/shared-1").await["usageType"], "VOICE");
        assert_eq!(t.b.read("/usage/shared-1").await["usageType"], "DATA");
        assert_eq!(t.a.total("/usage?relatedParty.id=cust-1&usageType=DATA").await, 0);
        // A change or removal by one leaves the other's as it was.
        t.b.patch_ok("/usage/shared-1", &json!({"status": "billed"})).await;
        assert_eq!(t.a.read("/usage/shared-1").await["status"], "rated");
        let deleted = t.b.delete("/usage/shared-1").await;
        assert_eq!(deleted.status().as_u16(), 204);
        assert_tmf_error(t.b.get("/usage/shared-1").await, 404).await;
        let kept = json_body(t.a.get("/usage/shared-1").await).await;
        assert_eq!(kept["usageType"], "VOICE");
        assert_eq!(t.a.total("/usage?relatedParty.id=cust-1").await, 1);
        assert_eq!(t.b.total("/usage?relatedParty.id=cust-1").await, 0);
    }
}
