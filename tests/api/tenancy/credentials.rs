//! With tenancy on, credentials must name a tenant: a token without the claim (or with an
//! empty or non-string one) and an API key issued without a tenant are refused (403, TMF
//! Error), and write nothing; the key issued for `b` sees what `b`'s tokens see.

use super::{token_of, TENANT_CLAIM};
use crate::auth::{claims, hs256, ALL_SCOPES};
use crate::fixtures::usage;
use crate::helpers::{assert_tmf_error, id_of};
use serde_json::json;

crate::tenancy_tests! {
    async fn credentials_without_a_tenant_are_refused(t) {
        let mut no_claim = claims(ALL_SCOPES);
        let mut empty = no_claim.clone();
        empty[TENANT_CLAIM] = json!("");
        let mut number = no_claim.clone();
        number[TENANT_CLAIM] = json!(7);
        no_claim["tenant"] = json!("a"); // another claim than the configured one
        let refused = [
            t.app.with_header("authorization", &format!("Bearer {}", hs256(&no_claim))),
            t.app.with_header("authorization", &format!("Bearer {}", hs256(&empty))),
            t.app.with_header("authorization", &format!("Bearer {}", hs256(&number))),
            t.app.with_header("x-api-key", &t.key_without_tenant),
        ];
        for api in &refused {
            let message = assert_tmf_error(api.get("/usage").await, 403).await;
            assert!(message.contains("tenant"), "{message}");
            assert_tmf_error(api.post("/usage", &usage("VOICE", "rated")).await, 403).await;
            assert_tmf_error(api.post("/hub", &json!({"callback": "http://127.0.0.1:9/x"})).await, 403).await;
        }
        assert_eq!(t.a.total("/usage").await, 0, "nothing written");
        assert_eq!(t.b.total("/usage").await, 0, "nothing written");
    }

    async fn a_key_and_a_token_of_one_tenant_see_the_same_rows(t) {
        let by_token = id_of(&t.b.create("/usage", &usage("VOICE", "rated")).await);
        let by_key = id_of(&t.b_key.create("/usage", &usage("DATA", "rated")).await);
        for api in [&t.b, &t.b_key] {
            let mut ids = api.list("/usage").await.ids();
            ids.sort();
            let mut expected = vec![by_token.clone(), by_key.clone()];
            expected.sort();
            assert_eq!(ids, expected);
        }
        // A new token of `a` (another `exp`, same tenant) sees a's rows, and only those.
        let a = t.app.with_header("authorization", &format!("Bearer {}", token_of("a")));
        assert_eq!(a.total("/usage").await, 0);
    }
}
