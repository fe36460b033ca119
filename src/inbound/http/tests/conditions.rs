//! Route tests end to end on the in-memory store with the CEL adapter: a step's `when` is
//! checked on every route that saves steps, read back with the template and its versions, and
//! skips its step at trigger when false.

use serde_json::json;
use warp::http::StatusCode;

use super::*;

const TEMPLATES: &str = "/api/v1/workflow/templates";

fn discount_template(when: Value) -> Value {
    json!({
        "name": "Unit discount",
        "event": "unit.discount_requested",
        "entity_type": "unit",
        "steps": [
            {"name": "Sales", "approver": {"type": "role", "role": "sales_manager"}},
            {"name": "Finance", "approver": {"type": "role", "role": "finance_manager"}, "when": when}
        ]
    })
}

fn discount(entity_id: i64, context: Value) -> Value {
    json!({
        "event": "unit.discount_requested",
        "entity_type": "unit",
        "entity_id": entity_id,
        "initiated_by": 3,
        "context": context
    })
}

#[tokio::test]
async fn a_condition_is_saved_and_read_back_with_the_template_and_its_version() {
    let h = store().await;
    let created = h
        .post(
            TEMPLATES,
            &discount_template(json!("context.discount_percent > 10")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body["steps"][1]["when"],
        json!("context.discount_percent > 10")
    );
    // A step without a condition has no `when` key at all.
    assert!(
        created.body["steps"][0].get("when").is_none(),
        "{}",
        created.body
    );
    let id = &created.body["id"];
    assert_eq!(h.get(&format!("{TEMPLATES}/{id}")).await.body, created.body);
    assert_eq!(
        h.get(&format!("{TEMPLATES}/{id}/versions/1")).await.body,
        created.body
    );
}

#[tokio::test]
async fn a_condition_that_does_not_parse_is_422_on_every_route_that_saves_steps() {
    let h = store().await;
    let bad = discount_template(json!("context.discount_percent >"));
    let refusals = [
        h.post(TEMPLATES, &bad).await,
        h.put(&format!("{TEMPLATES}/1"), &json!({"steps": bad["steps"]}))
            .await,
        h.post(
            &format!("{TEMPLATES}/1/versions"),
            &json!({"steps": bad["steps"]}),
        )
        .await,
    ];
    for refused in refusals {
        let message = assert_error(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            message.starts_with(
                "Field 'steps[1].when' is not a valid condition for step 2 ('Finance'): line 1"
            ),
            "{message}"
        );
    }
    // Nothing was saved: template 1 is still at version 1.
    assert_eq!(
        h.get(&format!("{TEMPLATES}/1")).await.body["version"],
        json!(1)
    );
}

#[tokio::test]
async fn a_condition_that_is_not_a_string_is_422() {
    let h = store().await;
    for bad in [json!(5), json!(true), json!(" "), json!(["x"])] {
        let refused = h.post(TEMPLATES, &discount_template(bad.clone())).await;
        let message = assert_error(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            message.starts_with("Field 'steps[1].when' "),
            "{bad}: {message}"
        );
    }
}

#[tokio::test]
async fn a_false_condition_skips_its_step_and_an_unknown_one_keeps_it() {
    let h = store().await;
    let created = h
        .post(
            TEMPLATES,
            &discount_template(json!("context.discount_percent > 10")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let small = h
        .trigger(&discount(1, json!({"discount_percent": 5})))
        .await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.body);
    assert_eq!(small.body["status"], json!("in_progress"));
    assert_eq!(small.body["steps"][1]["status"], json!("skipped"));
    let actions: Vec<_> = array(&small.body["audit"])
        .iter()
        .map(|a| a["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [
            json!("instance_created"),
            json!("step_activated"),
            json!("step_skipped")
        ]
    );
    let step = small.body["steps"][0]["id"].as_i64().unwrap();
    let approved = h.approve(step, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["status"], json!("approved"));
    assert_eq!(approved.body["steps"][1]["status"], json!("skipped"));

    for (entity, context) in [
        (2, json!({"discount_percent": 20})),
        (3, json!({"reason": "loyal customer"})),
        (4, json!({"discount_percent": "twenty"})),
    ] {
        let kept = h.trigger(&discount(entity, context.clone())).await;
        assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.body);
        assert_eq!(
            kept.body["steps"][1]["status"],
            json!("pending"),
            "{context}"
        );
    }
}

#[tokio::test]
async fn every_step_skipped_is_approved_at_once() {
    let h = store().await;
    let created = h
        .post(
            TEMPLATES,
            &json!({
                "name": "Small refunds",
                "event": "booking.small_refund",
                "entity_type": "booking",
                "steps": [
                    {"name": "Finance", "approver": {"type": "user", "user_id": 2},
                     "when": "context.amount > 100"}
                ]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let triggered = h
        .trigger(&json!({
            "event": "booking.small_refund",
            "entity_type": "booking",
            "entity_id": 1,
            "initiated_by": 3,
            "context": {"amount": 40}
        }))
        .await;

    assert_eq!(triggered.status, StatusCode::CREATED, "{}", triggered.body);
    assert_eq!(triggered.body["status"], json!("approved"));
    assert!(
        triggered.body["completed_at"].is_string(),
        "{}",
        triggered.body
    );
    assert_eq!(triggered.body["steps"][0]["status"], json!("skipped"));
    assert_eq!(
        triggered.body["audit"][2]["action"],
        json!("instance_approved")
    );
    assert_eq!(triggered.body["audit"][2]["actor_user_id"], json!(null));
}
