//! Route tests: the `Idempotency-Key` header on state-changing `POST`s, end to end on the
//! in-memory store (the answer kept, replayed with its header, refused for another request),
//! and the header's own checks, which refuse before the port is reached.

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::*;

fn keyed(path: &str, key: &str, body: &Value) -> RequestBuilder {
    json_request("POST", path, body).header("idempotency-key", key)
}

const APPROVE_1: &str = "/api/v1/workflow/steps/1/approve";

#[tokio::test]
async fn a_retried_approval_gets_the_first_answer_again_and_changes_nothing() {
    let h = store().await;
    let body = json!({"acted_by_user_id": 1, "comment": "ok"});
    let first = h.send(keyed(APPROVE_1, "retry-1", &body)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    // Keys in another order are the same request.
    let reordered = r#"{"comment":"ok","acted_by_user_id":1}"#;
    let retry = h
        .send(
            request()
                .method("POST")
                .path(APPROVE_1)
                .header("content-type", "application/json")
                .header("idempotency-key", "retry-1")
                .body(reordered),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert!(retry.replayed, "the retry is marked as replayed");
    assert_eq!(retry.text, first.text, "byte for byte the first answer");
    assert_eq!(retry.content_type.as_deref(), Some("application/json"));

    // Without the key, the same request is refused: the step was decided once.
    let unkeyed = h.approve(1, &body).await;
    assert_error(&unkeyed, StatusCode::CONFLICT, "step_not_actionable");
    let instance = h.get(&format!("{INSTANCES}/1")).await.body;
    let approvals = instance["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "step_approved")
        .count();
    assert_eq!(approvals, 1);
}

#[tokio::test]
async fn a_retried_trigger_gets_its_201_and_body_again() {
    let h = store().await;
    let first = h.send(keyed(INSTANCES, "t-7", &booking_trigger(7))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = h.send(keyed(INSTANCES, "t-7", &booking_trigger(7))).await;
    assert_eq!((retry.status, retry.replayed), (StatusCode::CREATED, true));
    assert_eq!(retry.text, first.text);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let h = store().await;
    let body = json!({"acted_by_user_id": 1});
    assert_eq!(
        h.send(keyed(APPROVE_1, "k", &body)).await.status,
        StatusCode::OK
    );
    for (path, other) in [
        (
            APPROVE_1,
            json!({"acted_by_user_id": 1, "comment": "changed"}),
        ),
        (
            "/api/v1/workflow/steps/1/reject",
            json!({"acted_by_user_id": 1, "comment": "x"}),
        ),
        (
            "/api/v1/workflow/instances/1/cancel",
            json!({"acted_by_user_id": 3}),
        ),
        (INSTANCES, booking_trigger(9)),
    ] {
        let res = h.send(keyed(path, "k", &other)).await;
        let message = assert_error(
            &res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
        assert!(message.contains("'k'"), "{message}");
    }
    // None of them ran: instance 1 is still active and booking 9 has no instance.
    let instance = h.get(&format!("{INSTANCES}/1")).await.body;
    assert_eq!(instance["status"], "in_progress");
    let found = h
        .get(&format!("{INSTANCES}?entity_type=booking&entity_id=9"))
        .await;
    assert_eq!(found.body["items"], json!([]));
}

#[tokio::test]
async fn bad_keys_are_refused_before_the_port() {
    let h = unreached();
    let body = json!({"acted_by_user_id": 1});
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "tab\tkey"] {
        let res = h.send(keyed(APPROVE_1, key, &body)).await;
        let message = assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("Idempotency-Key"), "{key:?}: {message}");
    }
    let non_ascii = h
        .send(json_request("POST", APPROVE_1, &body).header(
            "idempotency-key",
            warp::http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        ))
        .await;
    assert_error(
        &non_ascii,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // A key sent twice is checked in the header's unit tests: `warp::test` keeps one value.
}

#[tokio::test]
async fn keyed_template_writes_are_replayed() {
    let h = store().await;
    let template = json!({
        "name": "Lease renewal",
        "event": "lease.renewal_requested",
        "entity_type": "lease",
        "steps": [{"name": "Check", "approver": {"type": "role", "role": "sales_manager"}}]
    });
    let path = "/api/v1/workflow/templates";
    let first = h.send(keyed(path, "tpl", &template)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = h.send(keyed(path, "tpl", &template)).await;
    assert_eq!(
        (retry.status, retry.replayed, &retry.text),
        (StatusCode::CREATED, true, &first.text)
    );
    let listed = h
        .get("/api/v1/workflow/templates?event=lease.renewal_requested")
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "one template made"
    );

    let id = first.body["id"].as_i64().unwrap();
    let versions = format!("/api/v1/workflow/templates/{id}/versions");
    let update = json!({"name": "Lease renewal v2"});
    let published = h.send(keyed(&versions, "v2", &update)).await;
    assert_eq!(published.body["version"], 2, "{}", published.body);
    let again = h.send(keyed(&versions, "v2", &update)).await;
    assert_eq!((again.replayed, &again.text), (true, &published.text));
    let current = h.get(&format!("{path}/{id}")).await;
    assert_eq!(current.body["version"], 2, "published once");
}
