//! HTTP walks over the user directory, on both stores: a role change after a trigger changes
//! neither the instance's snapshot nor who may act on it, while the next trigger uses the new
//! roles; an inactive user is left out of new snapshots and refused (403 `user_inactive`) even
//! where a snapshot holds it.

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, step_id};

on_both_stores!(
    a_role_change_after_a_trigger_applies_to_the_next_trigger_only,
    an_inactive_user_is_left_out_and_refused_until_reactivated,
);

async fn put_user(app: &TestApp, id: i64, body: Value) -> Reply {
    app.raw(
        "PUT",
        &format!("users/{id}"),
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

fn ids(list: &Reply) -> Vec<i64> {
    list.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", list.body))
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

async fn a_role_change_after_a_trigger_applies_to_the_next_trigger_only(app: &TestApp) {
    let deputy = put_user(
        app,
        4,
        json!({"name": "Deputy", "roles": ["sales_manager"]}),
    )
    .await;
    assert_eq!(deputy.status, 201, "{}", deputy.body);
    assert_eq!(
        deputy.body,
        json!({"id": 4, "name": "Deputy", "roles": ["sales_manager"], "active": true})
    );

    let created = app
        .trigger("booking.cancellation_requested", "booking", 2, 3)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let instance = created.body;
    let id = instance["id"].as_i64().unwrap();
    let (s1, s2) = (step_id(&instance, 1), step_id(&instance, 2));
    assert_eq!(instance["steps"][0]["eligible_user_ids"], json!([1, 4]));
    assert_eq!(instance["steps"][1]["eligible_user_ids"], json!([2]));

    // After the trigger: user 4 loses the role, user 1 becomes a finance manager instead.
    let demoted = put_user(app, 4, json!({"name": "Deputy", "roles": []})).await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let moved = put_user(
        app,
        1,
        json!({"name": "Sales Manager", "roles": ["finance_manager"]}),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        ids(&app.get("users?role=finance_manager").await),
        vec![1, 2]
    );
    assert_eq!(
        ids(&app.get("users?role=sales_manager").await),
        Vec::<i64>::new()
    );

    // The instance keeps its snapshot, and who may act is still what it says.
    let shown = app.get(&format!("instances/{id}")).await;
    assert_eq!(shown.body["steps"][0]["eligible_user_ids"], json!([1, 4]));
    assert_eq!(shown.body["steps"][1]["eligible_user_ids"], json!([2]));
    let inbox = app.get("steps/pending?user_id=4").await;
    assert!(
        inbox.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["step_id"] == s1),
        "{}",
        inbox.body
    );
    let approved = app.approve(s1, 4).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["steps"][0]["acted_by_user_id"], 4);
    // User 1 now holds finance_manager, but step 2's snapshot is user 2 alone.
    let outsider = app.approve(s2, 1).await;
    assert_eq!((outsider.status, outsider.code()), (403, "not_an_approver"));

    // The next trigger uses the roles as they are now: nobody holds sales_manager.
    let nobody = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await;
    assert_eq!(
        (nobody.status, nobody.code()),
        (422, "no_eligible_approver")
    );
    put_user(
        app,
        5,
        json!({"name": "New Sales", "roles": ["sales_manager"]}),
    )
    .await;
    let next = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(next.body["steps"][0]["eligible_user_ids"], json!([5]));
    assert_eq!(next.body["steps"][1]["eligible_user_ids"], json!([1, 2]));
}

async fn an_inactive_user_is_left_out_and_refused_until_reactivated(app: &TestApp) {
    put_user(
        app,
        4,
        json!({"name": "Deputy", "roles": ["sales_manager"]}),
    )
    .await;
    let created = app
        .trigger("booking.cancellation_requested", "booking", 2, 3)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let s1 = step_id(&created.body, 1);
    assert_eq!(created.body["steps"][0]["eligible_user_ids"], json!([1, 4]));

    let off = put_user(
        app,
        4,
        json!({"name": "Deputy", "roles": ["sales_manager"], "active": false}),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(app.get("users/4").await.body["active"], json!(false));

    // In the snapshot, but inactive: refused, and the step still awaits.
    let refused = app.approve(s1, 4).await;
    assert_eq!((refused.status, refused.code()), (403, "user_inactive"));
    let refused = app.reject(s1, 4, "No").await;
    assert_eq!((refused.status, refused.code()), (403, "user_inactive"));
    // The order of refusals: an unknown step first, then the inactive user.
    let unknown = app.approve(999_999, 4).await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));

    // Left out of the next snapshot.
    let next = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(next.body["steps"][0]["eligible_user_ids"], json!([1]));

    // An inactive initiator can't start anything.
    put_user(
        app,
        3,
        json!({"name": "Sales Coordinator", "roles": ["sales_coordinator"], "active": false}),
    )
    .await;
    let started = app
        .trigger("booking.cancellation_requested", "booking", 4, 3)
        .await;
    assert_eq!((started.status, started.code()), (403, "user_inactive"));

    // Reactivated: user 4 acts on the snapshot it was always in.
    put_user(
        app,
        4,
        json!({"name": "Deputy", "roles": ["sales_manager"]}),
    )
    .await;
    let approved = app.approve(s1, 4).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}
