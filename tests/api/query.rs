//! The TMF630 query contract of the list operations (`GET /usage`, `GET /usageSpecification`)
//! on a realistic seeded data set: every filter operator in every spelling, nested paths
//! through objects and arrays (one array element matching all conditions on its array),
//! type-aware comparison (instants across offsets, numbers, booleans), AND of parameters,
//! sort with stable ties, paging with its status, count headers and `Link` header, `fields`
//! with nested paths, and every 400.

use crate::helpers::{assert_tmf_error, count_header, enc, id_of, json_body, keys_of, TestApp};
use crate::{backend_tests, backend_tests_with};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Seeded resources: a label (kept in `description`) for each server-given id.
struct Seed {
    labels: Vec<(&'static str, String)>,
}

impl Seed {
    fn id(&self, label: &str) -> &str {
        &self
            .labels
            .iter()
            .find(|(l, _)| *l == label)
            .unwrap_or_else(|| panic!("seeded {label}"))
            .1
    }

    fn label(&self, id: &str) -> &'static str {
        self.labels
            .iter()
            .find(|(_, i)| i == id)
            .unwrap_or_else(|| panic!("{id} was seeded"))
            .0
    }

    /// The labels of `items`, in order.
    fn labels_of(&self, items: &[Value]) -> Vec<&'static str> {
        items.iter().map(|i| self.label(&id_of(i))).collect()
    }

    /// Labels ordered as a sort with ties broken by ascending id: `groups` are in sort order,
    /// the members of each group tie.
    fn tied(&self, groups: &[&[&'static str]]) -> Vec<&'static str> {
        self.tied_by_id(groups, false)
    }

    /// The same when the last sort key is descending: ties are broken by descending id.
    fn tied_desc(&self, groups: &[&[&'static str]]) -> Vec<&'static str> {
        self.tied_by_id(groups, true)
    }

    fn tied_by_id(&self, groups: &[&[&'static str]], descending: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        for group in groups {
            let mut members: Vec<&'static str> = group.to_vec();
            members.sort_by_key(|l| self.id(l).to_string());
            if descending {
                members.reverse();
            }
            out.extend(members);
        }
        out
    }
}

/// Six usages with different offsets, parties, characteristics and ratings.
///
/// | label | usageDate (UTC)   | type  | status   | parties (id/role)       | rated products (id, taxRate, isBilled, ratingDate UTC, amount) |
/// | u1    | 05-01 08:00 +02   | VOICE | rated    | p1/customer, p2/user    | prod-1 0.2 false 10:00 12.05 |
/// | u2    | 05-01 08:00 Z     | DATA  | billed   | p2/customer             | prod-2 0.15 true 10:00 8 |
/// | u3    | 05-01 09:30 -02   | VOICE | received | p3/customer, p1/user    | prod-1 10 true 12:00 100; prod-9 0.1 false |
/// | u4    | 04-30 23:00 Z     | SMS   | rated    | p1/customer             | prod-3 0.05 false 00:00 0.5 |
/// | u5    | 05-01 23:30 +01   | DATA  | guided   | p4/user                 | - |
/// | u6    | -                 | VOICE | rejected | -                       | - |
fn usages() -> Vec<(&'static str, Value)> {
    let party =
        |id: &str, role: &str| json!({"id": id, "role": role, "@referredType": "Individual"});
    let spec = |id: &str| json!({"id": id, "@referredType": "UsageSpecification"});
    let characteristic = |name: &str, value: Value| json!({"name": name, "value": value});
    let rated = |product: &str, tax: Value, billed: bool, date: Option<&str>, amount: Value| {
        let mut r = json!({
            "productRef": {"id": product, "@referredType": "Product"},
            "taxRate": tax,
            "isBilled": billed,
            "taxIncludedRatingAmount": {"unit": "EUR", "value": amount}
        });
        if let Some(date) = date {
            r["ratingDate"] = json!(date);
        }
        r
    };
    vec![
        (
            "u1",
            json!({
                "description": "u1",
                "usageDate": "2024-05-01T10:00:00+02:00",
                "usageType": "VOICE",
                "status": "rated",
                "usageSpecification": spec("spec-voice"),
                "relatedParty": [party("p1", "customer"), party("p2", "user")],
                "usageCharacteristic": [
                    characteristic("duration", json!(120)),
                    characteristic("unit", json!("SEC"))
                ],
                "ratedProductUsage": [
                    rated("prod-1", json!(0.2), false, Some("2024-05-01T12:00:00+02:00"), json!(12.05))
                ]
            }),
        ),
        (
            "u2",
            json!({
                "description": "u2",
                "usageDate": "2024-05-01T08:00:00Z",
                "usageType": "DATA",
                "status": "billed",
                "usageSpecification": spec("spec-data"),
                "relatedParty": [party("p2", "customer")],
                "usageCharacteristic": [characteristic("volume", json!(2048))],
                "ratedProductUsage": [
                    rated("prod-2", json!(0.15), true, Some("2024-05-01T10:00:00Z"), json!(8))
                ]
            }),
        ),
        (
            "u3",
            json!({
                "description": "u3",
                "usageDate": "2024-05-01T07:30:00-02:00",
                "usageType": "VOICE",
                "status": "received",
                "usageSpecification": spec("spec-voice"),
                "relatedParty": [party("p3", "customer"), party("p1", "user")],
                "usageCharacteristic": [characteristic("duration", json!(30))],
                "ratedProductUsage": [
                    rated("prod-1", json!(10), true, Some("2024-05-01T09:00:00-03:00"), json!(100)),
                    rated("prod-9", json!(0.1), false, None, json!(1))
                ]
            }),
        ),
        (
            "u4",
            json!({
                "description": "u4",
                "usageDate": "2024-04-30T23:00:00Z",
                "usageType": "SMS",
                "status": "rated",
                "usageSpecification": spec("spec-sms"),
                "relatedParty": [party("p1", "customer")],
                "usageCharacteristic": [characteristic("count", json!(1))],
                "ratedProductUsage": [
                    rated("prod-3", json!(0.05), false, Some("2024-05-01T00:00:00Z"), json!(0.5))
                ]
            }),
        ),
        (
            "u5",
            json!({
                "description": "u5",
                "usageDate": "2024-05-02T00:30:00+01:00",
                "usageType": "DATA",
                "status": "guided",
                "usageSpecification": spec("spec-data"),
                "relatedParty": [party("p4", "user")],
                "usageCharacteristic": [characteristic("volume", json!(512))]
            }),
        ),
        (
            "u6",
            json!({
                "description": "u6",
                "usageType": "VOICE",
                "status": "rejected",
                "usageCharacteristic": [characteristic("duration", json!("n/a"))]
            }),
        ),
    ]
}

/// Four specifications.
///
/// | label | name    | version | lifecycle | isBundle | lastUpdate (UTC) | validFor.startDateTime (UTC) |
/// | s1    | Voice   | 1.0     | active    | false    | 03-01 11:00 +01  | 2023-12-31 22:00 (+02)       |
/// | s2    | Data    | 2.0     | active    | true     | 03-01 11:00 Z    | 2023-12-31 22:00 Z           |
/// | s3    | Sms     | 1.1     | retired   | false    | 02-01 00:00 Z    | 2024-06-01 00:00 Z           |
/// | s4    | Roaming | 3.0     | draft     | -        | now (server)     | -                            |
fn specifications() -> Vec<(&'static str, Value)> {
    vec![
        (
            "s1",
            json!({
                "name": "Voice", "description": "s1", "version": "1.0",
                "lifecycleStatus": "active", "isBundle": false,
                "lastUpdate": "2024-03-01T12:00:00+01:00",
                "validFor": {"startDateTime": "2024-01-01T00:00:00+02:00", "endDateTime": "2024-12-31T23:59:59Z"},
                "relatedParty": [{"id": "org-1", "role": "owner", "@referredType": "Organization"}]
            }),
        ),
        (
            "s2",
            json!({
                "name": "Data", "description": "s2", "version": "2.0",
                "lifecycleStatus": "active", "isBundle": true,
                "lastUpdate": "2024-03-01T11:00:00Z",
                "validFor": {"startDateTime": "2023-12-31T22:00:00Z"},
                "relatedParty": [{"id": "org-2", "role": "reviewer", "@referredType": "Organization"}]
            }),
        ),
        (
            "s3",
            json!({
                "name": "Sms", "description": "s3", "version": "1.1",
                "lifecycleStatus": "retired", "isBundle": false,
                "lastUpdate": "2024-02-01T00:00:00Z",
                "validFor": {"startDateTime": "2024-06-01T00:00:00Z"}
            }),
        ),
        (
            "s4",
            json!({"name": "Roaming", "description": "s4", "version": "3.0", "lifecycleStatus": "draft"}),
        ),
    ]
}

async fn seed(app: &TestApp, path: &str, bodies: Vec<(&'static str, Value)>) -> Seed {
    let mut labels = Vec::new();
    for (label, body) in bodies {
        labels.push((label, id_of(&app.create(path, &body).await)));
    }
    Seed { labels }
}

async fn seed_usages(app: &TestApp) -> Seed {
    seed(app, "/usage", usages()).await
}

async fn seed_specifications(app: &TestApp) -> Seed {
    seed(app, "/usageSpecification", specifications()).await
}

/// GETs `collection?query` (no paging: every match fits one page) and answers the labels of
/// the items in the order served, after checking 200 and both counts.
async fn served(app: &TestApp, seed: &Seed, collection: &str, query: &str) -> Vec<&'static str> {
    let path = format!("{collection}?{query}");
    let listing = app.list(&path).await;
    assert_eq!(listing.status, StatusCode::OK, "GET {path}");
    assert_eq!(
        listing.total, listing.count,
        "X-Total-Count = X-Result-Count of GET {path}"
    );
    seed.labels_of(&listing.items)
}

/// Asserts that each query answers exactly the expected labels (in any order).
async fn assert_matches(app: &TestApp, seed: &Seed, collection: &str, cases: &[(&str, &[&str])]) {
    for (query, expected) in cases {
        let mut got = served(app, seed, collection, query).await;
        got.sort();
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(got, expected, "GET {collection}?{query}");
    }
}

/// The `Link` header of a response as (rel, url) pairs.
fn links(response: &reqwest::Response) -> Vec<(String, String)> {
    let Some(header) = response.headers().get("link") else {
        return Vec::new();
    };
    let mut rest = header.to_str().expect("an ASCII Link header");
    let mut out = Vec::new();
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("a closing >") + start;
        let url = rest[start + 1..end].to_string();
        rest = &rest[end + 1..];
        let rel_at = rest.find("rel=\"").expect("a rel") + 5;
        let rel_end = rest[rel_at..].find('"').expect("a closing quote") + rel_at;
        out.push((rest[rel_at..rel_end].to_string(), url));
        rest = &rest[rel_end + 1..];
    }
    out
}

fn link<'a>(links: &'a [(String, String)], rel: &str) -> Option<&'a str> {
    links
        .iter()
        .find(|(r, _)| r == rel)
        .map(|(_, url)| url.as_str())
}

/// The value of a query parameter of a URL (raw, as written).
fn param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

backend_tests! {
    async fn equality_comma_or_eq_and_ne_in_every_spelling(app) {
        let s = seed_usages(&app).await;
        let u2 = s.id("u2").to_string();
        let u1_or_u3 = format!("{},{}", s.id("u1"), s.id("u3"));
        assert_matches(&app, &s, "/usage", &[
            ("status=rated", &["u1", "u4"]),
            ("status=rated,billed", &["u1", "u2", "u4"]),
            ("status.eq=billed", &["u2"]),
            ("status.eq=rated,billed", &["u1", "u2", "u4"]),
            ("usageType.eq=DATA,SMS", &["u2", "u4", "u5"]),
            ("status.ne=rated", &["u2", "u3", "u5", "u6"]),
            ("status!=rated", &["u2", "u3", "u5", "u6"]),
            ("status!=rated,billed", &["u3", "u5", "u6"]),
            ("status.ne=rated,billed", &["u3", "u5", "u6"]),
            ("usageType.ne=VOICE", &["u2", "u4", "u5"]),
            ("description=u3", &["u3"]),
            ("status=nothing", &[]),
            ("status=Rated", &[]),
            (&format!("id={u2}"), &["u2"]),
            (&format!("id={u1_or_u3}"), &["u1", "u3"]),
            (&format!("id.ne={u2}"), &["u1", "u3", "u4", "u5", "u6"]),
            // A nested attribute: an absent usageSpecification never equals a value.
            ("usageSpecification.id=spec-data", &["u2", "u5"]),
            ("usageSpecification.id=spec-voice,spec-sms", &["u1", "u3", "u4"]),
            ("usageSpecification.id.ne=spec-data", &["u1", "u3", "u4", "u6"]),
        ])
        .await;
    }

    async fn date_times_compare_as_instants_across_offsets(app) {
        let s = seed_usages(&app).await;
        // u1 is 10:00+02:00 and u2 08:00Z: the same instant.
        assert_matches(&app, &s, "/usage", &[
            ("usageDate=2024-05-01T08:00:00Z", &["u1", "u2"]),
            ("usageDate=2024-05-01T10:00:00%2B02:00", &["u1", "u2"]),
            // An unencoded `+` arrives as a space; the server takes the offset as meant.
            ("usageDate=2024-05-01T10:00:00+02:00", &["u1", "u2"]),
            ("usageDate.eq=2024-05-01T05:00:00-03:00", &["u1", "u2"]),
            ("usageDate=2024-05-01T08:00:00.000Z", &["u1", "u2"]),
            ("usageDate=2024-05-01T09:30:00Z,2024-04-30T23:00:00Z", &["u3", "u4"]),
            ("usageDate.gt=2024-05-01T09:00:00%2B01:00", &["u3", "u5"]),
            ("usageDate%3E2024-05-01T09:00:00%2B01:00", &["u3", "u5"]),
            ("usageDate.gte=2024-05-01T08:00:00Z", &["u1", "u2", "u3", "u5"]),
            ("usageDate%3E=2024-05-01T10:00:00%2B02:00", &["u1", "u2", "u3", "u5"]),
            ("usageDate.lt=2024-05-01T10:00:00%2B02:00", &["u4"]),
            ("usageDate%3C2024-05-01T08:00:00Z", &["u4"]),
            ("usageDate.lte=2024-05-01T03:00:00-05:00", &["u1", "u2", "u4"]),
            ("usageDate%3C=2024-05-01T08:00:00Z", &["u1", "u2", "u4"]),
            // u5 is written 2024-05-02T00:30+01:00 but happened on 05-01 at 23:30Z.
            ("usageDate.gt=2024-05-01T23:00:00Z", &["u5"]),
            ("usageDate.lt=2024-05-02T00:00:00Z", &["u1", "u2", "u3", "u4", "u5"]),
            ("usageDate.gte=2024-05-02T00:00:00%2B01:00", &["u5"]),
            // A date alone is its midnight UTC.
            ("usageDate.gte=2024-05-01", &["u1", "u2", "u3", "u5"]),
            // Absent values are not equal to a value (and match no range).
            ("usageDate.ne=2024-05-01T08:00:00Z", &["u3", "u4", "u5", "u6"]),
            // A date-time inside an array element, offsets again.
            ("ratedProductUsage.ratingDate=2024-05-01T10:00:00Z", &["u1", "u2"]),
            ("ratedProductUsage.ratingDate.gt=2024-05-01T11:00:00Z", &["u3"]),
            ("ratedProductUsage.ratingDate.lt=2024-05-01T10:00:00%2B02:00", &["u4"]),
            ("ratedProductUsage.ratingDate%3C=2024-05-01T10:00:00Z", &["u1", "u2", "u4"]),
            ("ratedProductUsage.ratingDate%3E=2024-05-01T12:00:00%2B02:00", &["u1", "u2", "u3"]),
        ])
        .await;
    }

    async fn fractional_seconds_order_as_instants(app) {
        let mut labels = Vec::new();
        for (label, date) in [
            ("whole", "2024-05-01T08:00:00Z"),
            ("half", "2024-05-01T08:00:00.5Z"),
            ("half-offset", "2024-05-01T10:00:00.500+02:00"),
            ("milli", "2024-05-01T08:00:00.001Z"),
            ("next", "2024-05-01T08:00:01Z"),
        ] {
            let body = json!({"usageType": "DATA", "usageDate": date, "description": label});
            labels.push((label, id_of(&app.create("/usage", &body).await)));
        }
        let s = Seed { labels };
        assert_matches(&app, &s, "/usage", &[
            ("usageDate.gt=2024-05-01T08:00:00Z", &["half", "half-offset", "milli", "next"]),
            ("usageDate=2024-05-01T08:00:00.5Z", &["half", "half-offset"]),
            ("usageDate.lt=2024-05-01T08:00:00.25Z", &["whole", "milli"]),
            ("usageDate.lte=2024-05-01T08:00:00.5%2B00:00", &["whole", "half", "half-offset", "milli"]),
        ])
        .await;
        assert_eq!(
            served(&app, &s, "/usage", "sort=usageDate").await,
            s.tied(&[&["whole"], &["milli"], &["half", "half-offset"], &["next"]])
        );
    }

    async fn numbers_compare_as_numbers(app) {
        let s = seed_usages(&app).await;
        // taxRate: u1 0.2, u2 0.15, u3 10 and 0.1, u4 0.05. As text, "10" < "2" and
        // "0.20" != "0.2": these answers differ from a text comparison.
        assert_matches(&app, &s, "/usage", &[
            ("ratedProductUsage.taxRate.gt=2", &["u3"]),
            ("ratedProductUsage.taxRate%3E2", &["u3"]),
            ("ratedProductUsage.taxRate.lt=2", &["u1", "u2", "u3", "u4"]),
            ("ratedProductUsage.taxRate.gt=0.15", &["u1", "u3"]),
            ("ratedProductUsage.taxRate.gte=0.15", &["u1", "u2", "u3"]),
            ("ratedProductUsage.taxRate%3E=0.15", &["u1", "u2", "u3"]),
            ("ratedProductUsage.taxRate.lte=0.1", &["u3", "u4"]),
            ("ratedProductUsage.taxRate%3C0.1", &["u4"]),
            ("ratedProductUsage.taxRate%3C=0.05", &["u4"]),
            ("ratedProductUsage.taxRate=0.20", &["u1"]),
            ("ratedProductUsage.taxRate=10.0", &["u3"]),
            ("ratedProductUsage.taxRate=1e1", &["u3"]),
            ("ratedProductUsage.taxRate=0.2,0.05", &["u1", "u4"]),
            ("ratedProductUsage.taxRate.gt=-1", &["u1", "u2", "u3", "u4"]),
            // Through an array and an object: 12.05, 8, 100 and 1, 0.5.
            ("ratedProductUsage.taxIncludedRatingAmount.value.gt=9", &["u1", "u3"]),
            ("ratedProductUsage.taxIncludedRatingAmount.value.lt=9", &["u2", "u3", "u4"]),
            ("ratedProductUsage.taxIncludedRatingAmount.value=8", &["u2"]),
        ])
        .await;
    }

    async fn booleans_compare_as_booleans(app) {
        let s = seed_usages(&app).await;
        assert_matches(&app, &s, "/usage", &[
            ("ratedProductUsage.isBilled=true", &["u2", "u3"]),
            ("ratedProductUsage.isBilled=false", &["u1", "u3", "u4"]),
            ("ratedProductUsage.isBilled.eq=true", &["u2", "u3"]),
            ("ratedProductUsage.isBilled=true,false", &["u1", "u2", "u3", "u4"]),
        ])
        .await;
    }

    async fn nested_paths_through_objects_and_arrays(app) {
        let s = seed_usages(&app).await;
        assert_matches(&app, &s, "/usage", &[
            ("relatedParty.id=p1", &["u1", "u3", "u4"]),
            ("relatedParty.id=p3,p4", &["u3", "u5"]),
            ("relatedParty.id.eq=p2", &["u1", "u2"]),
            ("relatedParty.role=customer", &["u1", "u2", "u3", "u4"]),
            ("relatedParty.role=user", &["u1", "u3", "u5"]),
            ("relatedParty.@referredType=Individual", &["u1", "u2", "u3", "u4", "u5"]),
            ("usageCharacteristic.name=duration", &["u1", "u3", "u6"]),
            ("usageCharacteristic.name=volume,count", &["u2", "u4", "u5"]),
            ("ratedProductUsage.productRef.id=prod-1", &["u1", "u3"]),
            ("ratedProductUsage.productRef.id=prod-2,prod-3", &["u2", "u4"]),
            ("ratedProductUsage.productRef.id=prod-404", &[]),
            ("usageSpecification.id=spec-voice", &["u1", "u3"]),
            ("usageSpecification.@referredType=UsageSpecification", &["u1", "u2", "u3", "u4", "u5"]),
        ])
        .await;
    }

    async fn one_array_element_must_match_every_condition_on_its_array(app) {
        let s = seed_usages(&app).await;
        assert_matches(&app, &s, "/usage", &[
            // u1 has p2 as its user, not its customer.
            ("relatedParty.id=p2&relatedParty.role=customer", &["u2"]),
            ("relatedParty.id=p2&relatedParty.role=user", &["u1"]),
            ("relatedParty.role=customer&relatedParty.id=p2", &["u2"]),
            ("relatedParty.id=p1&relatedParty.role=user", &["u3"]),
            ("relatedParty.id=p1&relatedParty.role=customer", &["u1", "u4"]),
            ("relatedParty.id=p4&relatedParty.role=customer", &[]),
            // u1's 120 is its duration, not its unit.
            ("usageCharacteristic.name=duration&usageCharacteristic.value=120", &["u1"]),
            ("usageCharacteristic.name=unit&usageCharacteristic.value=120", &[]),
            ("usageCharacteristic.name=volume&usageCharacteristic.value=512", &["u5"]),
            ("usageCharacteristic.name=unit&usageCharacteristic.value=SEC", &["u1"]),
            // u3's prod-1 is billed, its unbilled product is prod-9.
            ("ratedProductUsage.productRef.id=prod-1&ratedProductUsage.isBilled=false", &["u1"]),
            ("ratedProductUsage.productRef.id=prod-1&ratedProductUsage.isBilled=true", &["u3"]),
            ("ratedProductUsage.productRef.id=prod-9&ratedProductUsage.isBilled=true", &[]),
            ("ratedProductUsage.taxRate.gt=1&ratedProductUsage.isBilled=false", &[]),
            ("ratedProductUsage.taxRate.lt=1&ratedProductUsage.isBilled=true", &["u2"]),
            // Conditions on two different arrays each find their own element.
            ("relatedParty.role=user&ratedProductUsage.isBilled=true", &["u3"]),
            ("relatedParty.id=p1&ratedProductUsage.productRef.id=prod-1", &["u1", "u3"]),
        ])
        .await;
    }

    async fn regex_matches_within_text_and_through_arrays(app) {
        let s = seed_usages(&app).await;
        let q = |attribute: &str, pattern: &str| format!("{attribute}.regex={}", enc(pattern));
        assert_matches(&app, &s, "/usage", &[
            (&q("usageType", "^(VOICE|SMS)$"), &["u1", "u3", "u4", "u6"]),
            (&q("usageType", "OIC"), &["u1", "u3", "u6"]),
            (&q("usageType", "oic"), &[]),
            (&q("description", "^u[135]$"), &["u1", "u3", "u5"]),
            (&q("description", "u[1-3],?"), &["u1", "u2", "u3"]),
            (&q("relatedParty.id", "^p[12]$"), &["u1", "u2", "u3", "u4"]),
            (&q("ratedProductUsage.productRef.id", "-9$"), &["u3"]),
            ("usageType.regex=%5EDA", &["u2", "u5"]),
        ])
        .await;
    }

    async fn several_parameters_are_anded(app) {
        let s = seed_usages(&app).await;
        assert_matches(&app, &s, "/usage", &[
            ("usageType=VOICE&status=rated", &["u1"]),
            ("usageType=VOICE&status=received,rejected", &["u3", "u6"]),
            (
                "usageType=VOICE&usageDate.gte=2024-05-01T08:00:00Z&relatedParty.role=customer",
                &["u1", "u3"],
            ),
            ("status=rated,billed&ratedProductUsage.taxRate.gt=0.1", &["u1", "u2"]),
            (
                "usageDate.gte=2024-05-01T00:00:00Z&usageDate%3C2024-05-01T09:00:00Z",
                &["u1", "u2"],
            ),
            ("usageType=DATA&status!=billed&relatedParty.role=user", &["u5"]),
            ("usageType=SMS&status=billed", &[]),
            ("usageType=DATA&usageType=SMS", &[]),
        ])
        .await;
    }

    async fn specification_filters_by_nested_date_boolean_and_text(app) {
        let s = seed_specifications(&app).await;
        assert_matches(&app, &s, "/usageSpecification", &[
            // s1 starts 2024-01-01T00:00+02:00, s2 at the same instant written in UTC.
            ("validFor.startDateTime=2023-12-31T22:00:00Z", &["s1", "s2"]),
            ("validFor.startDateTime.gt=2023-12-31T23:00:00Z", &["s3"]),
            ("validFor.startDateTime.lt=2024-01-01T00:00:00Z", &["s1", "s2"]),
            ("validFor.startDateTime%3E=2024-01-01T00:00:00%2B02:00", &["s1", "s2", "s3"]),
            ("validFor.endDateTime.gt=2024-06-01T00:00:00Z", &["s1"]),
            ("isBundle=true", &["s2"]),
            ("isBundle=false", &["s1", "s3"]),
            ("isBundle.ne=true", &["s1", "s3", "s4"]),
            ("lifecycleStatus=active", &["s1", "s2"]),
            ("lifecycleStatus=active,draft", &["s1", "s2", "s4"]),
            ("lifecycleStatus.ne=active", &["s3", "s4"]),
            ("lifecycleStatus!=active,retired", &["s4"]),
            ("version=1.0", &["s1"]),
            ("version.gt=1.0", &["s2", "s3", "s4"]),
            ("version.regex=%5E1%5C.", &["s1", "s3"]),
            ("lastUpdate=2024-03-01T11:00:00Z", &["s1", "s2"]),
            ("lastUpdate.lt=2024-03-01T00:00:00Z", &["s3"]),
            ("lastUpdate.gt=2025-01-01T00:00:00Z", &["s4"]),
            ("name=Voice&isBundle=false", &["s1"]),
            ("lifecycleStatus=active&validFor.startDateTime.lt=2024-01-01T00:00:00Z", &["s1", "s2"]),
            ("relatedParty.role=owner", &["s1"]),
            ("relatedParty.id=org-2&relatedParty.role=owner", &[]),
        ])
        .await;
    }

    async fn sort_ascending_descending_and_by_several_keys(app) {
        let s = seed_usages(&app).await;
        // Ties (u1 and u2 are the same instant) are broken by id, the way of the last key;
        // absent values come last.
        for (query, expected) in [
            ("sort=usageDate", s.tied(&[&["u4"], &["u1", "u2"], &["u3"], &["u5"], &["u6"]])),
            ("sort=-usageDate", s.tied_desc(&[&["u5"], &["u3"], &["u1", "u2"], &["u4"], &["u6"]])),
            ("sort=-usageDate,usageType", vec!["u5", "u3", "u2", "u1", "u4", "u6"]),
            ("sort=usageType", s.tied(&[&["u2", "u5"], &["u4"], &["u1", "u3", "u6"]])),
            ("sort=%2BusageType,usageDate", vec!["u2", "u5", "u4", "u1", "u3", "u6"]),
            ("sort=-usageType,-usageDate", vec!["u3", "u1", "u6", "u4", "u5", "u2"]),
            (
                "sort=usageSpecification.id",
                s.tied(&[&["u2", "u5"], &["u4"], &["u1", "u3"], &["u6"]]),
            ),
            ("status=rated,billed&sort=-usageDate", s.tied_desc(&[&["u1", "u2"], &["u4"]])),
            ("sort=description", vec!["u1", "u2", "u3", "u4", "u5", "u6"]),
            ("sort=-description", vec!["u6", "u5", "u4", "u3", "u2", "u1"]),
        ] {
            assert_eq!(served(&app, &s, "/usage", query).await, expected, "GET /usage?{query}");
        }
        let s = seed_specifications(&app).await;
        for (query, expected) in [
            (
                "sort=validFor.startDateTime",
                s.tied(&[&["s1", "s2"], &["s3"], &["s4"]]),
            ),
            (
                "sort=-validFor.startDateTime",
                s.tied_desc(&[&["s3"], &["s1", "s2"], &["s4"]]),
            ),
            ("sort=-version", vec!["s4", "s2", "s3", "s1"]),
            ("sort=lifecycleStatus,-name", vec!["s1", "s2", "s4", "s3"]),
            // s1 and s2 have the same lastUpdate instant; s4 was stamped at creation.
            ("sort=lastUpdate", s.tied(&[&["s3"], &["s1", "s2"], &["s4"]])),
        ] {
            assert_eq!(
                served(&app, &s, "/usageSpecification", query).await,
                expected,
                "GET /usageSpecification?{query}"
            );
        }
    }

    async fn paging_through_a_sorted_list_has_no_repeats_or_gaps(app) {
        let s = seed_usages(&app).await;
        // Keys with many ties, so only the tie rule makes pages stable.
        for query in [
            "sort=usageType",
            "sort=-usageType",
            "sort=usageDate",
            "sort=-usageDate,usageType",
            "sort=usageSpecification.id",
            "sort=status",
            "",
            "relatedParty.role=customer&sort=-usageType",
        ] {
            let full = served(&app, &s, "/usage", query).await;
            for limit in [1, 2, 4] {
                let mut paged = Vec::new();
                let mut offset = 0;
                while offset < full.len() {
                    let path = format!("/usage?{query}&offset={offset}&limit={limit}");
                    let listing = app.list(&path).await;
                    assert_eq!(listing.total, full.len() as u64, "X-Total-Count of {path}");
                    let expected_count = limit.min(full.len() - offset);
                    assert_eq!(listing.count, expected_count as u64, "X-Result-Count of {path}");
                    paged.extend(s.labels_of(&listing.items));
                    offset += limit;
                }
                assert_eq!(paged, full, "pages of {limit} of GET /usage?{query}");
            }
        }
    }

    async fn partial_content_only_for_a_page_short_of_the_total(app) {
        seed_usages(&app).await;
        for (query, status, total, count) in [
            ("", 200, 6, 6),
            ("sort=usageDate", 200, 6, 6),
            ("limit=2", 206, 6, 2),
            ("offset=2", 206, 6, 4),
            ("offset=4&limit=2", 206, 6, 2),
            ("offset=5&limit=2", 206, 6, 1),
            ("offset=0&limit=6", 200, 6, 6),
            ("offset=0&limit=100", 200, 6, 6),
            ("offset=0", 200, 6, 6),
            ("limit=0", 206, 6, 0),
            ("offset=6&limit=2", 206, 6, 0),
            ("offset=60", 206, 6, 0),
            ("status=rated&limit=2", 200, 2, 2),
            ("status=rated&limit=1", 206, 2, 1),
            ("status=rated,billed&offset=1&limit=5", 206, 3, 2),
            ("status=nothing&limit=2", 200, 0, 0),
            ("status=nothing", 200, 0, 0),
        ] {
            let path = format!("/usage?{query}");
            let listing = app.list(&path).await;
            assert_eq!(listing.status.as_u16(), status, "status of GET {path}");
            assert_eq!(listing.total, total, "X-Total-Count of GET {path}");
            assert_eq!(listing.count, count, "X-Result-Count of GET {path}");
        }
        // The same rule on specifications.
        seed_specifications(&app).await;
        assert_eq!(app.list("/usageSpecification?limit=3").await.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(app.list("/usageSpecification?limit=4").await.status, StatusCode::OK);
        assert_eq!(app.list("/usageSpecification").await.status, StatusCode::OK);
    }

    async fn link_header_pages_keep_filter_and_sort(app) {
        let s = seed_usages(&app).await;
        let query = "status=rated,billed,received,guided&usageDate%3E=2024-04-30T00:00:00Z&sort=-usageDate,usageType";
        let response = app.get(&format!("/usage?{query}&offset=0&limit=2")).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        let first = links(&response);
        let rels: Vec<&str> = first.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(rels, vec!["first", "next", "last"], "no prev on the first page: {first:?}");
        for (rel, url) in &first {
            assert!(url.starts_with(&app.url("/usage?")), "{rel}: {url}");
            assert!(url.contains("status=rated,billed,received,guided"), "{rel} keeps the filter: {url}");
            assert!(url.contains("usageDate%3E=2024-04-30T00:00:00Z"), "{rel} keeps the range: {url}");
            assert!(url.contains("sort=-usageDate,usageType"), "{rel} keeps the sort: {url}");
            assert_eq!(param(url, "limit"), Some("2"), "{rel}: {url}");
        }
        assert_eq!(param(link(&first, "first").unwrap(), "offset"), Some("0"));
        assert_eq!(param(link(&first, "next").unwrap(), "offset"), Some("2"));
        // Five matches, pages of 2: the last page starts at 4.
        assert_eq!(param(link(&first, "last").unwrap(), "offset"), Some("4"));

        // Follow `next` to the end: every match once, in order.
        let mut seen = s.labels_of(&json_body(response).await.as_array().unwrap().clone());
        let mut next = link(&first, "next").map(str::to_string);
        let mut pages = 1;
        while let Some(url) = next {
            let response = app.client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "GET {url}");
            assert_eq!(count_header(&response, "x-total-count"), 5, "GET {url}");
            let page_links = links(&response);
            let prev = link(&page_links, "prev").unwrap_or_else(|| panic!("a prev link on {url}"));
            assert_eq!(
                param(prev, "offset").unwrap().parse::<u64>().unwrap() + 2,
                param(&url, "offset").unwrap().parse::<u64>().unwrap(),
                "prev of {url}"
            );
            next = link(&page_links, "next").map(str::to_string);
            seen.extend(s.labels_of(&json_body(response).await.as_array().unwrap().clone()));
            pages += 1;
            assert!(pages <= 5, "next links end");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, vec!["u5", "u3", "u2", "u1", "u4"]);

        // The last page has prev and last but no next.
        let response = app.get(&format!("/usage?{query}&offset=4&limit=2")).await;
        let last = links(&response);
        let rels: Vec<&str> = last.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(rels, vec!["first", "prev", "last"], "{last:?}");
        assert_eq!(param(link(&last, "prev").unwrap(), "offset"), Some("2"));
    }

    async fn fields_keep_nested_paths_through_arrays(app) {
        let s = seed_usages(&app).await;
        let listing = app.list("/usage?fields=relatedParty.id,usageDate&sort=description").await;
        assert_eq!(s.labels_of(&listing.items), vec!["u1", "u2", "u3", "u4", "u5", "u6"]);
        let u1 = &listing.items[0];
        assert_eq!(
            u1,
            &json!({
                "id": s.id("u1"),
                "href": app.href("usage", s.id("u1")),
                "usageDate": "2024-05-01T10:00:00+02:00",
                "relatedParty": [{"id": "p1"}, {"id": "p2"}]
            })
        );
        // u6 has neither attribute: only id and href remain.
        assert_eq!(keys_of(&listing.items[5]), vec!["href", "id"]);
        for item in &listing.items[..5] {
            assert_eq!(keys_of(item), vec!["href", "id", "relatedParty", "usageDate"]);
        }
        // Only id and href when they alone are asked for.
        let listing = app.list("/usage?fields=id&status=billed").await;
        assert_eq!(
            listing.items,
            vec![json!({"id": s.id("u2"), "href": app.href("usage", s.id("u2"))})]
        );
        // Deeper, through an array and an object, with a filter.
        let listing = app
            .list("/usage?fields=ratedProductUsage.productRef.id,ratedProductUsage.taxRate&ratedProductUsage.isBilled=true&sort=description")
            .await;
        assert_eq!(s.labels_of(&listing.items), vec!["u2", "u3"]);
        assert_eq!(
            listing.items[1]["ratedProductUsage"],
            json!([{"productRef": {"id": "prod-1"}, "taxRate": 10}, {"productRef": {"id": "prod-9"}, "taxRate": 0.1}])
        );
        // A whole object kept, and on retrieve.
        let one = app
            .read(&format!("/usage/{}?fields=usageSpecification,status", s.id("u2")))
            .await;
        assert_eq!(
            one,
            json!({
                "id": s.id("u2"),
                "href": app.href("usage", s.id("u2")),
                "status": "billed",
                "usageSpecification": {"id": "spec-data", "@referredType": "UsageSpecification"}
            })
        );
        let spec = seed_specifications(&app).await;
        let listing = app
            .list("/usageSpecification?fields=validFor.startDateTime,name&isBundle=true")
            .await;
        assert_eq!(
            listing.items,
            vec![json!({
                "id": spec.id("s2"),
                "href": app.href("usageSpecification", spec.id("s2")),
                "name": "Data",
                "validFor": {"startDateTime": "2023-12-31T22:00:00Z"}
            })]
        );
    }

    async fn every_bad_query_is_a_400_naming_the_attribute(app) {
        seed_usages(&app).await;
        seed_specifications(&app).await;
        for (path, named) in [
            ("/usage?colour=red", "colour"),
            ("/usage?relatedParty.colour=red", "relatedParty.colour"),
            ("/usage?ratedProductUsage.productRef.colour=x", "ratedProductUsage.productRef.colour"),
            ("/usage?usageCharacteristic.name.first=x", "usageCharacteristic.name.first"),
            ("/usage?colour.gt=3", "colour"),
            ("/usage?usageDate=2024-13-01T00:00:00Z", "usageDate"),
            ("/usage?usageDate.gt=soon", "usageDate"),
            ("/usage?usageDate%3E=2024-05-01T25:00:00Z", "usageDate"),
            ("/usage?ratedProductUsage.ratingDate.lt=yesterday", "ratedProductUsage.ratingDate"),
            ("/usage?ratedProductUsage.taxRate.gt=abc", "ratedProductUsage.taxRate"),
            ("/usage?ratedProductUsage.taxRate=0.2,lots", "ratedProductUsage.taxRate"),
            ("/usage?ratedProductUsage.taxRate=NaN", "ratedProductUsage.taxRate"),
            ("/usage?ratedProductUsage.taxRate=inf", "ratedProductUsage.taxRate"),
            ("/usage?ratedProductUsage.isBilled=yes", "ratedProductUsage.isBilled"),
            ("/usage?ratedProductUsage.isBilled=1", "ratedProductUsage.isBilled"),
            ("/usageSpecification?isBundle=maybe", "isBundle"),
            ("/usageSpecification?isBundle=TRUE", "isBundle"),
            ("/usageSpecification?validFor.startDateTime.gt=2024", "validFor.startDateTime"),
            ("/usage?usageType.regex=%28VOICE", "usageType"),
            ("/usage?relatedParty.id.regex=%5Bp", "relatedParty.id"),
            ("/usage?usageDate.gt=2024-05-01T00:00:00Z,2024-05-02T00:00:00Z", "usageDate"),
            ("/usage?usageDate%3C2024-05-01T00:00:00Z,2024-05-02T00:00:00Z", "usageDate"),
            ("/usage?ratedProductUsage.taxRate.lte=1,2", "ratedProductUsage.taxRate"),
            ("/usageSpecification?version.gte=1.0,2.0", "version"),
            ("/usage?sort=colour", "colour"),
            ("/usage?sort=usageDate,-colour", "colour"),
            ("/usage?sort=relatedParty.id", "relatedParty.id"),
            ("/usage?sort=-usageCharacteristic.name", "usageCharacteristic.name"),
            ("/usageSpecification?sort=usageType", "usageType"),
            ("/usage?offset=-1", "offset"),
            ("/usage?offset=abc", "offset"),
            ("/usage?offset=1.5", "offset"),
            ("/usage?limit=-2", "limit"),
            ("/usage?limit=two", "limit"),
            ("/usage?limit=", "limit"),
            ("/usage?offset=99999999999999999999", "offset"),
            ("/usageSpecification?limit=-1", "limit"),
            ("/usage?fields=usageDate,colour", "colour"),
            ("/usage?fields=relatedParty.colour", "relatedParty.colour"),
            ("/usageSpecification?fields=status", "status"),
        ] {
            let response = app.get(path).await;
            let message = assert_tmf_error(response, 400).await;
            assert!(message.contains(named), "GET {path}: the message names {named}: {message}");
        }
    }
}

/// `limit` above the configured maximum is capped to it.
mod capped_limit {
    use super::*;

    backend_tests_with! {
        |c: &mut tmf635::Config| c.max_limit = 3;

        async fn a_limit_above_the_maximum_answers_the_maximum(app) {
            let s = seed_usages(&app).await;
            let listing = app.list("/usage?limit=10&sort=description").await;
            assert_eq!(listing.status, StatusCode::PARTIAL_CONTENT);
            assert_eq!((listing.total, listing.count), (6, 3));
            assert_eq!(s.labels_of(&listing.items), vec!["u1", "u2", "u3"]);
            let response = app.get("/usage?limit=10&sort=description").await;
            let page_links = links(&response);
            let next = link(&page_links, "next").expect("a next link");
            assert_eq!(param(next, "limit"), Some("3"), "links use the capped limit: {next}");
            assert_eq!(param(next, "offset"), Some("3"));
            // The rest, on the next page.
            let response = app.client.get(next).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
            let items = json_body(response).await.as_array().unwrap().clone();
            assert_eq!(s.labels_of(&items), vec!["u4", "u5", "u6"]);
            // A plain list holds the first page only (and says so in its counts).
            let listing = app.list("/usage").await;
            assert_eq!(listing.status, StatusCode::OK);
            assert_eq!((listing.total, listing.count), (6, 3));
            let listing = app.list("/usage?offset=4&limit=1000000").await;
            assert_eq!((listing.total, listing.count), (6, 2));
        }
    }
}
