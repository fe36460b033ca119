//! PostgreSQL row locks, checked by holding them from another connection: racing approvers
//! queue behind them and exactly one wins; a queued decision whose statement the server cancels
//! is a 503 that changes nothing.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use super::count;
use crate::fixtures::{role, uid};
use crate::helpers::{spawn_pg, step_id};

/// Approvers racing on one step while another connection holds the instance's and the steps'
/// row locks, so that every racer is queued before any can proceed. Without `FOR UPDATE` in the
/// decision, every racer reads `awaiting_action` before the release and all of them "win".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_approvers_on_a_locked_step_give_exactly_one_winner() {
    const RACERS: i64 = 24;
    let mut app = spawn_pg().await;
    let db = app.db.as_ref().unwrap();
    let store = db.store().await;
    for n in 0..RACERS {
        let user = uid(100 + n);
        store.add_user(user, &format!("Racer {n}")).await.unwrap();
        store
            .set_user_roles(user, &[role("sales_manager")])
            .await
            .unwrap();
    }
    let instance = app
        .trigger("booking.cancellation_requested", "booking", 5, 3)
        .await
        .body;
    let instance_id = instance["id"].as_i64().unwrap();
    let (step, next) = (step_id(&instance, 1), step_id(&instance, 2));

    let mut holder = db.connection().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .batch_execute(&format!(
            "SELECT id FROM workflow_instances WHERE id = {instance_id} FOR UPDATE; \
             SELECT id FROM workflow_instance_steps WHERE instance_id = {instance_id} FOR UPDATE"
        ))
        .await
        .unwrap();

    let client = app.client.clone();
    let racers: Vec<_> = (0..RACERS)
        .map(|n| {
            let url = format!("{}/api/v1/workflow/steps/{step}/approve", app.base);
            let client = client.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"acted_by_user_id": 100 + n}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap();
                (status, body)
            })
        })
        .collect();

    // Wait until every racer is blocked on a row lock held by `holder`.
    let mut watcher = db.connection().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut queued = false;
    while !queued && tokio::time::Instant::now() < deadline {
        let waiting = count(
            &mut watcher,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        queued = waiting >= RACERS;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(queued, "the racers did not all queue on the held locks");
    holder.batch_execute("COMMIT").await.unwrap();

    let mut statuses = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        if status != 200 {
            assert_eq!(
                (status, body["error"]["code"].as_str().unwrap()),
                (409, "step_not_actionable")
            );
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        RACERS as usize - 1
    );

    let mut conn = db.connection().await;
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM workflow_audit_log WHERE step_id = {step} AND action = 'step_approved'")).await,
        1
    );
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM workflow_audit_log WHERE step_id = {next} AND action = 'step_activated'")).await,
        1
    );
    let shown = app.get(&format!("instances/{instance_id}")).await.body;
    assert_eq!(shown["steps"][0]["status"], "approved");
    assert_eq!(shown["steps"][1]["status"], "awaiting_action");
    app.stop().await;
}

/// A decision whose statement the server cancels (as a statement time-out or an operator would)
/// is answered 503, to be retried, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_statement_is_503_and_changes_nothing() {
    let mut app = spawn_pg().await;
    let db = app.db.as_ref().unwrap();
    let mut holder = db.connection().await;
    holder
        .batch_execute("BEGIN; SELECT id FROM workflow_instances WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let client = app.client.clone();
    let url = format!("{}/api/v1/workflow/steps/1/approve", app.base);
    let racer = tokio::spawn(async move {
        let r = client
            .post(url)
            .json(&json!({"acted_by_user_id": 1}))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    let mut watcher = db.connection().await;
    let mut waiting = false;
    for _ in 0..400 {
        let queued = count(
            &mut watcher,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if queued == 1 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waiting, "the decision did not queue on the lock");
    assert_eq!(
        count(
            &mut watcher,
            "SELECT count(*) AS n FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock') AS c",
        )
        .await,
        1
    );
    let (status, body) = racer.await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (503, "unavailable")
    );
    holder.batch_execute("COMMIT").await.unwrap();
    let shown = app.get("instances/1").await.body;
    assert_eq!(shown["steps"][0]["status"], "awaiting_action");
    assert_eq!(shown["audit"].as_array().unwrap().len(), 2);
    app.stop().await;
}
