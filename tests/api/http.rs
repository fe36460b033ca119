//! HTTP end to end over a real socket, run against both stores: the business walks of
//! DESIGN.md and every error code.

use serde_json::json;

use crate::helpers::{TestApp, actions, step_id};

macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut app = crate::helpers::spawn_memory().await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut app = crate::helpers::spawn_pg().await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            )+
        }
    };
}

on_both_stores!(
    cancellation_walk_from_the_issue,
    booking_cancellation_approved_by_both_steps,
    unit_price_update_approved_then_rejected,
    commission_through_its_direct_user_step,
    every_error_code,
);

async fn cancellation_walk_from_the_issue(app: &TestApp) {
    let created = app
        .trigger("booking.cancellation_requested", "booking", 2, 3)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let instance = created.body;
    assert_eq!(instance["status"], "in_progress");
    assert_eq!(instance["steps"][0]["status"], "awaiting_action");
    assert_eq!(instance["steps"][1]["status"], "pending");
    let (s1, s2) = (step_id(&instance, 1), step_id(&instance, 2));

    let inbox = app.get("steps/pending?user_id=1").await;
    assert_eq!(inbox.status, 200);
    let listed: Vec<i64> = inbox.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["step_id"].as_i64().unwrap())
        .collect();
    assert!(listed.contains(&s1), "inbox {listed:?} lacks step {s1}");
    let entry = inbox.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["step_id"] == s1)
        .unwrap();
    assert_eq!(entry["instance_id"], instance["id"]);
    assert_eq!(entry["event"], "booking.cancellation_requested");
    assert_eq!(entry["entity_type"], "booking");
    assert_eq!(entry["entity_id"], 2);

    let wrong = app.approve(s1, 2).await;
    assert_eq!((wrong.status, wrong.code()), (403, "not_an_approver"));

    let approved = app.approve(s1, 1).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["steps"][0]["status"], "approved");
    assert_eq!(approved.body["steps"][0]["acted_by_user_id"], 1);
    assert_eq!(approved.body["steps"][1]["status"], "awaiting_action");

    let rejected = app.reject(s2, 2, "Refund exceeds the policy").await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(rejected.body["status"], "rejected");
    assert!(rejected.body["completed_at"].is_string());

    let again = app.approve(s2, 2).await;
    assert_eq!((again.status, again.code()), (409, "step_not_actionable"));
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected")
    );

    let id = instance["id"].as_i64().unwrap();
    let shown = app.get(&format!("instances/{id}")).await;
    assert_eq!(shown.status, 200);
    let body = shown.body;
    assert_eq!(body["steps"][1]["comment"], "Refund exceeds the policy");
    assert_eq!(body["steps"][1]["acted_by_user_id"], 2);
    for step in body["steps"].as_array().unwrap() {
        assert!(step["acted_at"].as_str().unwrap().ends_with('Z'));
        assert!(step["activated_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(
        actions(&body),
        [
            "instance_created",
            "step_activated",
            "step_approved",
            "step_activated",
            "step_rejected",
            "instance_rejected"
        ]
    );
    let actors: Vec<_> = body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["actor_user_id"].clone())
        .collect();
    assert_eq!(
        actors,
        [
            json!(3),
            json!(null),
            json!(1),
            json!(null),
            json!(2),
            json!(2)
        ]
    );
}

async fn booking_cancellation_approved_by_both_steps(app: &TestApp) {
    let instance = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await
        .body;
    let first = app.approve(step_id(&instance, 1), 1).await;
    assert_eq!(first.status, 200);
    let done = app
        .post(
            &format!("steps/{}/approve", step_id(&instance, 2)),
            json!({"acted_by_user_id": 2, "comment": "Refund approved"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "approved");
    assert!(done.body["completed_at"].is_string());
    assert_eq!(done.body["steps"][1]["comment"], "Refund approved");
    assert_eq!(actions(&done.body).last().unwrap(), "instance_approved");
    // The outcome reaches the callback sink after commit.
    let delivered = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        app.callbacks
            .delivered()
            .iter()
            .any(|e| e.instance_id.get() == done.body["id"].as_i64().unwrap())
    })
    .await;
    assert!(delivered, "on_approved was not delivered");
    // A new cancellation for the same booking is allowed once the first has ended.
    let again = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await;
    assert_eq!(again.status, 201);
}

async fn unit_price_update_approved_then_rejected(app: &TestApp) {
    let instance = app
        .trigger("unit.price_update_requested", "unit", 4, 1)
        .await;
    assert_eq!(instance.status, 201, "{}", instance.body);
    let instance = instance.body;
    assert_eq!(
        instance["steps"][1]["approver"],
        json!({"type": "user", "user_id": 2})
    );
    assert_eq!(instance["steps"][1]["eligible_user_ids"], json!([2]));
    assert_eq!(app.approve(step_id(&instance, 1), 1).await.status, 200);
    let rejected = app
        .reject(step_id(&instance, 2), 2, "Below the floor price")
        .await;
    assert_eq!(rejected.status, 200);
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["steps"][1]["status"], "rejected");
    assert_eq!(
        rejected.body["steps"][1]["comment"],
        "Below the floor price"
    );
}

async fn commission_through_its_direct_user_step(app: &TestApp) {
    let instance = app
        .trigger("commission.approval_requested", "commission", 2, 3)
        .await
        .body;
    assert_eq!(instance["steps"][0]["eligible_user_ids"], json!([2]));
    assert_eq!(instance["steps"][1]["eligible_user_ids"], json!([1]));
    assert_eq!(app.approve(step_id(&instance, 1), 2).await.status, 200);
    let inbox = app.get("steps/pending?user_id=1").await.body;
    assert!(
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["step_id"] == step_id(&instance, 2))
    );
    let done = app.approve(step_id(&instance, 2), 1).await;
    assert_eq!(done.body["status"], "approved");
    assert_eq!(done.body["steps"][1]["acted_by_user_id"], 1);
}

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
