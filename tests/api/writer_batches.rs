//! The writer commits concurrent creates together (one multi-row INSERT per table); a create
//! the database refuses fails alone, and the others of its batch are stored with their events.
//! Through the store itself: no valid HTTP request makes the database refuse a create.

use crate::helpers::{join_all, Backend, ScratchDatabase};
use entity::{event_outbox, usage};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Map, Value};
use tmf635::store::{Store, Tenant};

fn usage_document(id: &str) -> Map<String, Value> {
    let document = json!({
        "id": id,
        "href": format!("http://test/tmf-api/usageManagement/v4/usage/{id}"),
        "usageType": "VOICE",
        "status": "rated",
        "relatedParty": [{"id": "party-1", "role": "customer"}]
    });
    match document {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

async fn a_refused_create_fails_alone(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else {
        return;
    };
    let store = Store::connect(&database.url, 4, std::time::Duration::from_secs(20), 0)
        .await
        .expect("the store connects");
    // One id twice: whichever comes second breaks the primary key. All start together, so
    // they share batches with the others.
    let mut ids: Vec<String> = (0..20).map(|i| format!("batch-{i:02}")).collect();
    ids.push("batch-07".into());
    let tenant = store.for_tenant(Tenant::implicit());
    let results = join_all(
        ids.iter()
            .map(|id| tenant.create::<usage::Entity>(usage_document(id))),
    )
    .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 1, "only the duplicate fails: {results:?}");
    let stored = store
        .pool()
        .run(|db| usage::Entity::find().count(db))
        .await
        .expect("count");
    assert_eq!(stored, 20, "every other create is stored");
    let events = store
        .pool()
        .run(|db| event_outbox::Entity::find().count(db))
        .await
        .expect("count");
    assert_eq!(
        events, 20,
        "each stored create has its event, the failed one none"
    );
}

#[tokio::test]
async fn sqlite_a_refused_create_fails_alone() {
    a_refused_create_fails_alone(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_refused_create_fails_alone() {
    a_refused_create_fails_alone(Backend::Postgres).await;
}
