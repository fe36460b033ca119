//! Route tests end to end on the in-memory store: template authoring, versions while
//! instances run, one active template per event, and segregation of duties.

use serde_json::json;
use warp::http::StatusCode;

use super::*;

const TEMPLATES: &str = "/api/v1/workflow/templates";

fn price_update(entity_id: i64, by: i64) -> Value {
    json!({
        "event": "unit.price_update_requested",
        "entity_type": "unit",
        "entity_id": entity_id,
        "initiated_by": by
    })
}

#[tokio::test]
async fn a_created_template_is_listed_and_triggers() {
    let h = store().await;
    let created = h
        .post(
            TEMPLATES,
            &json!({
                "name": "Booking refund",
                "event": "booking.refund_requested",
                "entity_type": "booking",
                "steps": [{"name": "Finance", "approver": {"type": "user", "user_id": 2}}]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["id"], json!(4));
    assert_eq!(created.body["version"], json!(1));
    assert_eq!(created.body["is_active"], json!(true));
    assert_eq!(created.body["forbid_self_approval"], json!(false));
    assert_eq!(h.get(&format!("{TEMPLATES}/4")).await.body, created.body);
    assert_eq!(
        h.get(&format!("{TEMPLATES}/4/versions/1")).await.body,
        created.body
    );

    let all = h.get(TEMPLATES).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let ids: Vec<_> = array(&all.body["items"])
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3), json!(4)]);
    let one = h
        .get(&format!("{TEMPLATES}?event=booking.refund_requested"))
        .await;
    assert_eq!(one.body, json!({"items": [created.body.clone()]}));
    let inactive = h.get(&format!("{TEMPLATES}?is_active=false")).await;
    assert_eq!(inactive.body, json!({"items": []}));

    let triggered = h
        .trigger(&json!({
            "event": "booking.refund_requested",
            "entity_type": "booking",
            "entity_id": 9,
            "initiated_by": 3
        }))
        .await;
    assert_eq!(triggered.status, StatusCode::CREATED, "{}", triggered.body);
    assert_eq!(triggered.body["template_id"], json!(4));
}

#[tokio::test]
async fn a_new_version_leaves_running_instances_on_theirs() {
    let h = store().await;
    // Instance 1 runs on template 1, version 1: PUT is refused, a new version is not.
    let path = format!("{TEMPLATES}/1");
    let steps =
        json!([{"name": "Finance only", "approver": {"type": "role", "role": "finance_manager"}}]);
    let refused = h.put(&path, &json!({"steps": steps})).await;
    assert_error(&refused, StatusCode::CONFLICT, "template_in_use");
    let v2 = h
        .post(&format!("{path}/versions"), &json!({"steps": steps}))
        .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    assert_eq!(v2.body["version"], json!(2));
    assert_eq!(array(&v2.body["steps"]).len(), 1);

    // Version 1 reads back as it was.
    let v1 = h.get(&format!("{path}/versions/1")).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    assert_eq!(v1.body["version"], json!(1));
    assert_eq!(array(&v1.body["steps"]).len(), 2);
    assert_eq!(v1.body["name"], v2.body["name"]);
    assert_error(
        &h.get(&format!("{path}/versions/3")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The running instance finishes on its own two steps.
    let running = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(running.body["template_version"], json!(1));
    let ok = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let done = h.approve(2, &json!({"acted_by_user_id": 2})).await;
    assert_eq!(done.body["status"], json!("approved"), "{}", done.body);
    assert_eq!(done.body["template_version"], json!(1));

    // A new trigger uses version 2.
    let next = h.trigger(&booking_trigger(5)).await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.body);
    assert_eq!(next.body["template_version"], json!(2));
    assert_eq!(step_statuses(&next.body), ["awaiting_action"]);
}

#[tokio::test]
async fn a_second_active_template_is_refused_on_create_put_and_version() {
    let h = store().await;
    let body = json!({
        "name": "Price update, finance only",
        "event": "unit.price_update_requested",
        "entity_type": "unit",
        "steps": [{"name": "Finance", "approver": {"type": "user", "user_id": 2}}]
    });
    assert_error(
        &h.post(TEMPLATES, &body).await,
        StatusCode::CONFLICT,
        "template_conflict",
    );
    let mut inactive = body.clone();
    inactive["is_active"] = json!(false);
    let created = h.post(TEMPLATES, &inactive).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = format!("{TEMPLATES}/{}", created.body["id"]);
    let activate = json!({"is_active": true});
    assert_error(
        &h.put(&path, &activate).await,
        StatusCode::CONFLICT,
        "template_conflict",
    );
    assert_error(
        &h.post(&format!("{path}/versions"), &activate).await,
        StatusCode::CONFLICT,
        "template_conflict",
    );
    // Nothing changed: still version 1, inactive, and no version 2 stored.
    assert_eq!(h.get(&path).await.body, created.body);
    assert_error(
        &h.get(&format!("{path}/versions/2")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn forbidding_self_approval_keeps_the_initiator_off_the_steps() {
    let h = store().await;
    // Template 2: role sales_manager (user 1), then user 2.
    let strict = h
        .post(
            &format!("{TEMPLATES}/2/versions"),
            &json!({"forbid_self_approval": true}),
        )
        .await;
    assert_eq!(strict.status, StatusCode::CREATED, "{}", strict.body);
    assert_eq!(strict.body["forbid_self_approval"], json!(true));

    // User 1 starts it and is the only sales manager: nobody is left for step 1.
    let refused = h.trigger(&price_update(3, 1)).await;
    let message = assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_eligible_approver",
    );
    assert!(message.contains("self-approval"), "{message}");

    // User 3 starts it: the sales manager, user 1, stays eligible.
    let started = h.trigger(&price_update(3, 3)).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["steps"][0]["eligible_user_ids"], json!([1]));

    // User 2 starts one: step 2 names user 2 alone.
    let own_step = h.trigger(&price_update(4, 2)).await;
    assert_error(
        &own_step,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_eligible_approver",
    );
}

#[tokio::test]
async fn the_demo_templates_still_allow_self_approval() {
    let h = store().await;
    for id in 1..=3 {
        let t = h.get(&format!("{TEMPLATES}/{id}")).await;
        assert_eq!(
            t.body["forbid_self_approval"],
            json!(false),
            "template {id}"
        );
    }
    // User 1 starts a price update and approves its step 1 as the sales manager.
    let started = h.trigger(&price_update(3, 1)).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let step = started.body["steps"][0]["id"].as_i64().unwrap();
    let approved = h.approve(step, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
}
