//! PostgreSQL row locks under a quorum: 20 eligible users approve a quorum-3 step at once,
//! through two servers (each with its own connection pool) on one database, queued behind the
//! instance's row lock held from another connection. Exactly 3 approvals count, the step is
//! approved once, the next step activated once, and the 17 others get 409. Without `FOR UPDATE`
//! in the decision's lock reads, the racers all read the step with no approvals before the
//! release and each writes its own: more than 3 "count", and several approve the step.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{count, until_queued};
use crate::helpers::{TestApp, serve, spawn_pg, step_id};

const RACERS: i64 = 20;
const QUORUM: i64 = 3;
/// Racers are users 201..=220, all holding the role `board`.
const FIRST_RACER: i64 = 201;

fn approve(app: &TestApp, step: i64, by: i64) -> JoinHandle<(i64, u16, Value)> {
    let client = app.client.clone();
    let url = format!("{}/api/v1/workflow/steps/{step}/approve", app.base);
    tokio::spawn(async move {
        let response = client
            .post(url)
            .json(&json!({"acted_by_user_id": by, "comment": format!("racer {by}")}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (by, status, response.json().await.unwrap_or(Value::Null))
    })
}

/// The board: users 201..=220 with role `board`, and a template whose first step needs 3 of
/// them, then user 2.
async fn board_template(app: &TestApp) {
    for id in FIRST_RACER..FIRST_RACER + RACERS {
        let response = app
            .client
            .put(format!("{}/api/v1/workflow/users/{id}", app.base))
            .json(&json!({"name": format!("Board member {id}"), "roles": ["board"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let created = app
        .post(
            "templates",
            json!({
                "name": "Large refund",
                "event": "booking.large_refund_requested",
                "entity_type": "booking",
                "steps": [
                    {"name": "Board", "approver": {"type": "role", "role": "board"},
                     "quorum": QUORUM},
                    {"name": "Finance", "approver": {"type": "user", "user_id": 2}}
                ]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["steps"][0]["quorum"], QUORUM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_approvers_of_a_quorum_3_step_count_exactly_3() {
    let mut first = spawn_pg().await;
    let db = first.db.as_ref().unwrap();
    // A second server on the same database, with its own pool: as a second process would be.
    let mut second = serve(db.store().await, None).await;
    board_template(&first).await;

    let instance = first
        .trigger("booking.large_refund_requested", "booking", 4, 3)
        .await
        .body;
    let id = instance["id"].as_i64().unwrap();
    let (board, finance) = (step_id(&instance, 1), step_id(&instance, 2));
    assert_eq!(instance["steps"][0]["quorum"], QUORUM);
    assert_eq!(
        instance["steps"][0]["eligible_user_ids"]
            .as_array()
            .unwrap()
            .len(),
        RACERS as usize
    );

    let mut holder = db.connection().await;
    holder
        .batch_execute(&format!(
            "BEGIN; \
             SELECT id FROM workflow_instances WHERE id = {id} FOR UPDATE; \
             SELECT id FROM workflow_instance_steps WHERE instance_id = {id} FOR UPDATE"
        ))
        .await
        .unwrap();
    let mut watcher = db.connection().await;

    let racers: Vec<_> = (FIRST_RACER..FIRST_RACER + RACERS)
        .map(|by| {
            let app = if by % 2 == 0 { &first } else { &second };
            approve(app, board, by)
        })
        .collect();
    assert!(
        until_queued(&mut watcher, RACERS).await,
        "not all {RACERS} racers queued on the held locks"
    );
    holder.batch_execute("COMMIT").await.unwrap();

    let mut counted = Vec::new();
    let mut step_approvals = 0;
    for racer in racers {
        let (by, status, body) = racer.await.unwrap();
        match status {
            200 => {
                counted.push(by);
                if body["steps"][0]["status"] == "approved" {
                    step_approvals += 1;
                }
            }
            409 => assert_eq!(body["error"]["code"], "step_not_actionable", "{by}: {body}"),
            other => panic!("racer {by}: {other} {body}"),
        }
    }
    assert_eq!(counted.len(), QUORUM as usize, "counted: {counted:?}");
    assert_eq!(step_approvals, 1, "one answer shows the step approved");

    // The database shows exactly the outcome the rules allow.
    let mut conn = db.connection().await;
    let audited = |action: &str, step: i64| {
        format!(
            "SELECT count(*) AS n FROM workflow_audit_log \
             WHERE step_id = {step} AND action = '{action}'"
        )
    };
    assert_eq!(
        count(&mut conn, &audited("approval_recorded", board)).await,
        QUORUM
    );
    assert_eq!(count(&mut conn, &audited("step_approved", board)).await, 1);
    assert_eq!(
        count(&mut conn, &audited("step_activated", finance)).await,
        1
    );
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT jsonb_array_length(approvals)::bigint AS n \
                 FROM workflow_instance_steps WHERE id = {board}"
            )
        )
        .await,
        QUORUM
    );
    let shown = first.get(&format!("instances/{id}")).await.body;
    assert_eq!(shown["status"], "in_progress");
    assert_eq!(shown["steps"][0]["status"], "approved");
    assert_eq!(shown["steps"][1]["status"], "awaiting_action");
    let approvers: Vec<i64> = shown["steps"][0]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user_id"].as_i64().unwrap())
        .collect();
    counted.sort_unstable();
    let mut sorted = approvers.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted, counted,
        "the step records exactly the answered approvals"
    );
    assert_eq!(
        shown["steps"][0]["acted_by_user_id"].as_i64(),
        approvers.last().copied(),
        "the approval that reached the quorum decided the step"
    );
    let verified = first
        .get(&format!("instances/{id}/audit/verify"))
        .await
        .body;
    assert_eq!(verified["valid"], true, "{verified}");
    // The chain as SQL computes it (for tools that check trails in bulk) agrees, partial
    // approvals included.
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT coalesce(workflow_audit_first_bad({id}), 0) AS n")
        )
        .await,
        0
    );

    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partial_approval_leaves_the_approvers_inbox_only() {
    let mut app = spawn_pg().await;
    board_template(&app).await;
    let instance = app
        .trigger("booking.large_refund_requested", "booking", 4, 3)
        .await
        .body;
    let board = step_id(&instance, 1);
    let inbox = |user: i64| {
        let app = &app;
        async move {
            app.get(&format!("steps/pending?user_id={user}")).await.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["step_id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(inbox(FIRST_RACER).await, vec![board]);
    let first = app.approve(board, FIRST_RACER).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["steps"][0]["status"], "awaiting_action");
    assert_eq!(inbox(FIRST_RACER).await, Vec::<i64>::new());
    assert_eq!(inbox(FIRST_RACER + 1).await, vec![board]);
    let again = app.approve(board, FIRST_RACER).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "already_approved");
    app.stop().await;
}
