//! HTTP walks: the business scenarios of the README, request by request, on both stores.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, actions, eventually, step_id};

on_both_stores!(
    cancellation_walk_from_the_issue,
    booking_cancellation_approved_by_both_steps,
    unit_price_update_approved_then_rejected,
    commission_through_its_direct_user_step,
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
    let delivered = eventually(Duration::from_secs(5), || async {
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
