//! PostgreSQL: eligibility is snapshotted at trigger time. Role changes made in the directory
//! afterwards change neither who may act nor what is shown; a role nobody holds refuses the
//! trigger and stores nothing.

use serde_json::json;

use super::count;
use crate::fixtures::{role, uid};
use crate::helpers::{spawn_pg, step_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_changes_after_a_trigger_change_neither_who_may_act_nor_the_data() {
    let mut app = spawn_pg().await;
    let store = app.db.as_ref().unwrap().store().await;
    store.add_user(uid(4), "New Sales Manager").await.unwrap();

    let instance = app
        .trigger("booking.cancellation_requested", "booking", 4, 3)
        .await
        .body;
    let id = instance["id"].as_i64().unwrap();
    let before = app.get(&format!("instances/{id}")).await.body;
    // User 1 loses the role, user 4 gains it.
    store.set_user_roles(uid(1), &[]).await.unwrap();
    store
        .set_user_roles(uid(4), &[role("sales_manager")])
        .await
        .unwrap();
    assert_eq!(app.get(&format!("instances/{id}")).await.body, before);

    let newcomer = app.approve(step_id(&instance, 1), 4).await;
    assert_eq!((newcomer.status, newcomer.code()), (403, "not_an_approver"));
    let inbox = app.get("steps/pending?user_id=4").await.body;
    assert_eq!(inbox["items"], json!([]));
    let snapshot_holder = app.approve(step_id(&instance, 1), 1).await;
    assert_eq!(snapshot_holder.status, 200, "{}", snapshot_holder.body);
    assert_eq!(
        snapshot_holder.body["steps"][0]["eligible_user_ids"],
        json!([1])
    );

    // A new trigger snapshots the new membership.
    let fresh = app
        .trigger("booking.cancellation_requested", "booking", 5, 3)
        .await
        .body;
    assert_eq!(fresh["steps"][0]["eligible_user_ids"], json!([4]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_no_members_is_no_eligible_approver() {
    let mut app = spawn_pg().await;
    let store = app.db.as_ref().unwrap().store().await;
    store.set_user_roles(uid(2), &[]).await.unwrap();
    let reply = app
        .trigger("commission.approval_requested", "commission", 1, 3)
        .await;
    assert_eq!((reply.status, reply.code()), (422, "no_eligible_approver"));
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance_manager")
    );
    let mut conn = app.db.as_ref().unwrap().connection().await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM workflow_instances WHERE event = 'commission.approval_requested'").await,
        0,
        "a refused trigger stores nothing"
    );
    app.stop().await;
}
