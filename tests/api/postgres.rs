//! Guarantees only PostgreSQL can give, checked on real databases: the append-only audit
//! trigger, the row locks that make racing approvers safe, the eligibility snapshot, the outbox
//! surviving a crash, persistence across restarts, and 503 when the database is gone.

use std::sync::Arc;
use std::time::Duration;

use approvals::app;
use approvals::domain::model::{RoleName, UserId};
use approvals::outbound::postgres::{PgConfig, PgStore};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{TestDb, eventually, serve, spawn_pg, step_id};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

fn uid(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_refuses_update_delete_and_truncate() {
    let mut app = spawn_pg().await;
    let db = app.db.as_ref().unwrap();
    let mut conn = db.connection().await;
    let before = count(&mut conn, "SELECT count(*) AS n FROM workflow_audit_log").await;
    assert!(before > 0, "the sample instance has audit entries");
    for sql in [
        "UPDATE workflow_audit_log SET comment = 'tampered'",
        "DELETE FROM workflow_audit_log",
        "TRUNCATE workflow_audit_log",
        "TRUNCATE workflow_audit_log CASCADE",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM workflow_audit_log").await,
        before
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_audit_log WHERE comment = 'tampered'"
        )
        .await,
        0
    );
    app.stop().await;
}

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

/// A decision committed while no dispatcher runs (as if the process died right after the
/// commit) is delivered by the next process that starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_event_left_by_a_crash_is_delivered_after_restart() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let demo = approvals::demo::demo_data();
    store.load_reference_data(&demo).await.unwrap();
    app::create_sample_instance(Arc::clone(&store), &demo)
        .await
        .unwrap();

    // Decide through the service alone: commit happens, nothing delivers.
    let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
    let step = approvals::domain::model::StepId::new(1).unwrap();
    let decided = service
        .decide(approvals::domain::model::DecisionRequest {
            step_id: step,
            acted_by: uid(1),
            verdict: approvals::domain::model::Verdict::Reject {
                comment: approvals::domain::model::Comment::new("Customer withdrew").unwrap(),
            },
        })
        .await
        .unwrap();
    drop(service);
    let mut conn = db.connection().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_callback_outbox WHERE delivered_at IS NULL"
        )
        .await,
        1
    );

    // "Restart": a new process serving the same database.
    let mut app = serve(db.store().await, None).await;
    let delivered = eventually(Duration::from_secs(10), || async {
        !app.callbacks.delivered().is_empty()
    })
    .await;
    assert!(
        delivered,
        "the pending callback was not delivered after restart"
    );
    let events = app.callbacks.delivered();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].instance_id, decided.id);
    assert_eq!(events[0].kind.as_str(), "on_rejected");
    assert_eq!(events[0].comment.as_deref(), Some("Customer withdrew"));
    let marked = eventually(Duration::from_secs(5), || async {
        let mut conn = db.connection().await;
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_callback_outbox WHERE delivered_at IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    assert!(marked, "the delivered callback was not marked delivered");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_until_they_succeed() {
    let mut app = spawn_pg().await;
    app.callbacks.fail_next(2);
    let instance = app
        .trigger("unit.price_update_requested", "unit", 1, 1)
        .await
        .body;
    app.approve(step_id(&instance, 1), 1).await;
    let done = app.approve(step_id(&instance, 2), 2).await;
    assert_eq!(done.body["status"], "approved");
    let delivered = eventually(Duration::from_secs(10), || async {
        app.callbacks.delivered().len() == 1
    })
    .await;
    assert!(delivered, "delivery was not retried");
    let mut conn = app.db.as_ref().unwrap().connection().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT attempts::bigint AS n FROM workflow_callback_outbox"
        )
        .await,
        3,
        "two failures, then success"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let mut first = spawn_pg().await;
    let instance = first
        .trigger("booking.cancellation_requested", "booking", 2, 3)
        .await
        .body;
    first.approve(step_id(&instance, 1), 1).await;
    let id = instance["id"].as_i64().unwrap();
    let before = first.get(&format!("instances/{id}")).await.body;
    first.stop().await;
    let db = first.db.take().unwrap();
    let mut second = serve(db.store().await, Some(db)).await;
    assert_eq!(second.get(&format!("instances/{id}")).await.body, before);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_not_a_hang() {
    // Nothing listens on port 1.
    let config = PgConfig {
        connect_timeout: Duration::from_secs(1),
        ..PgConfig::default()
    };
    let store = Arc::new(
        PgStore::connect("postgres://postgres@127.0.0.1:1/none", &config)
            .await
            .unwrap(),
    );
    let mut app = serve(store, None).await;
    let started = std::time::Instant::now();
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.code()), (503, "unavailable"));
    let read = app.get("instances/1").await;
    assert_eq!((read.status, read.code()), (503, "unavailable"));
    let write = app
        .trigger("booking.cancellation_requested", "booking", 1, 3)
        .await;
    assert_eq!((write.status, write.code()), (503, "unavailable"));
    assert!(
        !write.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    app.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

async fn explain(conn: &mut AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(format!("EXPLAIN {sql}"))
        .load::<Plan>(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The inbox and the active-instance check are answered from indexes, not table scans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_active_instance_queries_use_their_indexes() {
    let app = spawn_pg().await;
    let mut conn = app.db.as_ref().unwrap().connection().await;
    conn.batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let inbox = explain(
        &mut conn,
        "SELECT s.id FROM workflow_inbox b JOIN workflow_instance_steps s ON s.id = b.step_id \
         JOIN workflow_instances i ON i.id = s.instance_id \
         WHERE b.user_id = 1 ORDER BY b.activated_at, b.step_id LIMIT 50",
    )
    .await;
    assert!(inbox.contains("workflow_inbox_pkey"), "{inbox}");
    let active = explain(
        &mut conn,
        "SELECT id FROM workflow_instances WHERE event = 'booking.cancellation_requested' \
         AND entity_type = 'booking' AND entity_id = 1 AND status IN ('pending', 'in_progress')",
    )
    .await;
    assert!(active.contains("workflow_instances_one_active"), "{active}");
    drop(app);
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

/// An outbox row nobody can read is parked with its reason; the others are still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_outbox_row_does_not_hold_up_the_others() {
    let mut app = spawn_pg().await;
    let mut conn = app.db.as_ref().unwrap().connection().await;
    conn.batch_execute(
        "INSERT INTO workflow_callback_outbox (instance_id, kind, payload, created_at, due_at) \
         VALUES (1, 'on_approved', '{\"unexpected\": true}', now() - interval '1 minute', now() - interval '1 minute')",
    )
    .await
    .unwrap();
    let instance = app
        .trigger("unit.price_update_requested", "unit", 6, 1)
        .await
        .body;
    app.reject(step_id(&instance, 1), 1, "Not now").await;
    let delivered = eventually(Duration::from_secs(10), || async {
        app.callbacks.delivered().len() == 1
    })
    .await;
    assert!(delivered, "the readable event was not delivered");
    assert_eq!(
        app.callbacks.delivered()[0].instance_id.get(),
        instance["id"].as_i64().unwrap()
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_callback_outbox \
             WHERE delivered_at IS NULL AND last_error LIKE 'unreadable payload%' AND due_at > now() + interval '12 hours'",
        )
        .await,
        1
    );
    app.stop().await;
}
