//! HTTP errors: every error code of the contract, with its status and a message that leaks
//! nothing internal, on both stores. The cases rely on the demo's sample instance (id 1, steps 1
//! and 2, awaiting user 1 on step 1).

use serde_json::json;

use crate::helpers::TestApp;

on_both_stores!(every_error_code);

async fn every_error_code(app: &TestApp) {
    let cases = [
        (
            app.raw(
                "POST",
                "instances",
                Some("application/json"),
                b"{nope".to_vec(),
            )
            .await,
            400,
            "invalid_json",
        ),
        (
            app.raw(
                "POST",
                "instances",
                Some("application/json"),
                b"[1]".to_vec(),
            )
            .await,
            400,
            "invalid_json",
        ),
        (app.get("instances/999999").await, 404, "not_found"),
        (app.get("instances/abc").await, 404, "not_found"),
        (app.get("templates/0").await, 404, "not_found"),
        (app.approve(999999, 1).await, 404, "not_found"),
        (app.get("/nowhere").await, 404, "not_found"),
        (
            app.raw("DELETE", "instances/1", None, Vec::new()).await,
            405,
            "method_not_allowed",
        ),
        (app.approve(1, 2).await, 403, "not_an_approver"),
        (app.approve(2, 2).await, 409, "step_not_actionable"),
        (
            app.trigger("booking.cancellation_requested", "booking", 1, 3)
                .await,
            409,
            "instance_already_active",
        ),
        (
            app.post("templates/1", json!({})).await,
            405,
            "method_not_allowed",
        ),
        (
            app.raw(
                "PUT",
                "templates/1",
                Some("application/json"),
                br#"{"name":"x"}"#.to_vec(),
            )
            .await,
            409,
            "template_in_use",
        ),
        (
            app.raw(
                "POST",
                "instances",
                Some("application/json"),
                vec![b' '; 70 * 1024],
            )
            .await,
            413,
            "payload_too_large",
        ),
        (
            app.raw("POST", "instances", None, b"{}".to_vec()).await,
            415,
            "unsupported_media_type",
        ),
        (
            app.raw("POST", "instances", Some("text/plain"), b"{}".to_vec())
                .await,
            415,
            "unsupported_media_type",
        ),
        (
            app.post(
                "instances",
                json!({"event": "booking.cancellation_requested"}),
            )
            .await,
            422,
            "validation_failed",
        ),
        (
            app.get("steps/pending?user_id=0").await,
            422,
            "validation_failed",
        ),
        (
            app.trigger("nothing.happened", "booking", 1, 3).await,
            422,
            "no_active_template",
        ),
        (
            app.trigger("unit.price_update_requested", "unit", 9, 42)
                .await,
            422,
            "unknown_user",
        ),
        (app.approve(1, 42).await, 422, "unknown_user"),
        // PostgreSQL can't store NUL: refused at the edge for both stores, never a 500.
        (app.post("steps/1/reject", json!({"acted_by_user_id": 1, "comment": "no\u{0}pe"})).await, 422, "validation_failed"),
        (app.post("instances", json!({"event": "unit.price_update_requested", "entity_type": "unit", "entity_id": 8, "initiated_by": 1, "context": {"a": ["x\u{0}y"]}})).await, 422, "validation_failed"),
        (app.send(app.client.post(format!("{}/api/v1/workflow/instances", app.base)).header("content-type", reqwest::header::HeaderValue::from_bytes(b"application/json\xff").unwrap()).body("{}")).await, 415, "unsupported_media_type"),
    ];
    for (index, (reply, status, code)) in cases.iter().enumerate() {
        assert_eq!(
            (reply.status, reply.code()),
            (*status, *code),
            "case {index}: {}",
            reply.body
        );
        assert!(
            !reply.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "case {index} has no message"
        );
    }
    // Nothing internal leaks into messages.
    for (reply, _, _) in &cases {
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("diesel") && !message.contains("SQL"),
            "{message}"
        );
    }
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
}
