//! `x-request-id` over a real socket, on both stores: a given id comes back on API answers,
//! errors and 404s; without one, every answer (the pages' too) carries a new UUID.

use crate::helpers::TestApp;

on_both_stores!(every_answer_carries_a_request_id);

async fn every_answer_carries_a_request_id(app: &TestApp) {
    for path in [
        "/api/v1/workflow/instances/1",
        "/api/v1/workflow/instances/999999",
        "/no/such/route",
        "/api/v1/openapi.json",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("x-request-id", "client-chosen-42")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-request-id"],
            "client-chosen-42",
            "{path}"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for path in ["/ui/", "/healthz", "/no/such/route"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 36, "{path}: {id}");
        assert!(seen.insert(id), "{path}: an id given twice");
    }
}
