//! PostgreSQL row locks under a cancellation: a cancel and approvals of the last step queue on
//! the instance's row lock held from another connection, then go at once. The database decides
//! one outcome: exactly one 200, every other request 409, one ending in the audit and the outbox.
//! Without `FOR UPDATE` in the lock reads, every racer reads the instance active before the
//! release and several "win".

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{count, until_queued};
use crate::helpers::{TestApp, spawn_pg, step_id};

/// Approvals of the last step racing the cancel.
const APPROVERS: usize = 8;

/// Sends `body` to `path` on its own task; answers (path, status, body).
fn fire(app: &TestApp, path: String, body: Value) -> JoinHandle<(String, u16, Value)> {
    let client = app.client.clone();
    let url = format!("{}/api/v1/workflow/{path}", app.base);
    tokio::spawn(async move {
        let response = client.post(url).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (path, status, body)
    })
}

/// One round on a fresh booking cancellation at its last step. `cancel_first`: the cancel
/// queues before the approvals, else after them; either way exactly one request wins.
async fn round(app: &TestApp, entity_id: i64, cancel_first: bool) {
    let db = app.db.as_ref().unwrap();
    let instance = app
        .trigger("booking.cancellation_requested", "booking", entity_id, 3)
        .await
        .body;
    let id = instance["id"].as_i64().unwrap();
    let (first, last) = (step_id(&instance, 1), step_id(&instance, 2));
    let approved = app
        .post(
            &format!("steps/{first}/approve"),
            json!({"acted_by_user_id": 1}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);

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

    let cancel = || {
        fire(
            app,
            format!("instances/{id}/cancel"),
            json!({"acted_by_user_id": 3, "reason": "withdrawn during the race"}),
        )
    };
    let mut racers = Vec::new();
    if cancel_first {
        racers.push(cancel());
        assert!(until_queued(&mut watcher, 1).await, "the cancel queued");
    }
    for _ in 0..APPROVERS {
        racers.push(fire(
            app,
            format!("steps/{last}/approve"),
            json!({"acted_by_user_id": 2, "comment": "approved during the race"}),
        ));
    }
    if !cancel_first {
        assert!(
            until_queued(&mut watcher, APPROVERS as i64).await,
            "the approvals queued"
        );
        racers.push(cancel());
    }
    let all = APPROVERS as i64 + 1;
    assert!(
        until_queued(&mut watcher, all).await,
        "not all {all} racers queued on the held locks"
    );
    holder.batch_execute("COMMIT").await.unwrap();

    let mut winners = Vec::new();
    for racer in racers {
        let (path, status, body) = racer.await.unwrap();
        match status {
            200 => winners.push(path),
            409 => {
                let code = body["error"]["code"].as_str().unwrap_or_default();
                let expected = if path.ends_with("/cancel") {
                    "instance_not_active"
                } else {
                    "step_not_actionable"
                };
                assert_eq!(code, expected, "{path}: {body}");
            }
            other => panic!("{path}: {other} {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let cancelled = winners[0].ends_with("/cancel");
    // Row-lock waiters are served first come, first served, so each round exercises its branch
    // below: the cancel wins when it queued first, an approval when the cancel queued last.
    assert_eq!(cancelled, cancel_first, "winner {}", winners[0]);

    // One outcome in the database, and it is the winner's.
    let mut conn = db.connection().await;
    let endings = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM workflow_audit_log WHERE instance_id = {id} \
             AND action IN ('instance_approved', 'instance_cancelled', 'instance_rejected')"
        ),
    )
    .await;
    assert_eq!(endings, 1, "one ending audited");
    let outbox = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM workflow_callback_outbox WHERE instance_id = {id} \
             AND kind IN ('on_approved', 'on_rejected', 'on_cancelled')"
        ),
    )
    .await;
    assert_eq!(outbox, 1, "one outcome event");
    let approvals = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM workflow_audit_log \
             WHERE step_id = {last} AND action = 'step_approved'"
        ),
    )
    .await;
    let inbox = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM workflow_inbox WHERE step_id = {last}"),
    )
    .await;
    assert_eq!(inbox, 0, "the last step left the inbox");
    let shown = app.get(&format!("instances/{id}")).await.body;
    if cancelled {
        assert_eq!(approvals, 0);
        assert_eq!(shown["status"], "cancelled");
        assert_eq!(shown["steps"][1]["status"], "cancelled");
        assert_eq!(
            count(
                &mut conn,
                &format!(
                    "SELECT count(*) AS n FROM workflow_callback_outbox \
                     WHERE instance_id = {id} AND kind = 'on_cancelled'"
                )
            )
            .await,
            1
        );
    } else {
        assert_eq!(approvals, 1);
        assert_eq!(shown["status"], "approved");
        assert_eq!(shown["steps"][1]["status"], "approved");
    }
    assert_eq!(shown["steps"][0]["status"], "approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_approvals_of_the_last_step_gives_one_outcome() {
    let mut app = spawn_pg().await;
    round(&app, 21, true).await;
    round(&app, 22, false).await;
    app.stop().await;
}
