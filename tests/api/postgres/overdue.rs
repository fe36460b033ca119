//! Due dates end to end on PostgreSQL, on the real clock: steps due in two seconds are escalated
//! and rejected by the servers' overdue schedulers within the promised five seconds; and two
//! servers (each with its own pool and scheduler, as two processes would be) on one database
//! handle each of many overdue steps exactly once (one `step.overdue` event, one audit entry).

use std::time::Duration;

use serde_json::{Value, json};

use super::count;
use crate::helpers::{TestApp, eventually, serve, spawn_pg, step_id};

/// Users 41 and 42 hold the role `director`; 42 is inactive.
async fn directors(app: &TestApp) {
    for (id, active) in [(41, true), (42, false)] {
        let reply = app
            .send(
                app.client
                    .put(format!("{}/api/v1/workflow/users/{id}", app.base))
                    .json(&json!({"name": format!("Director {id}"), "roles": ["director"], "active": active})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

/// A one-step template for `event` (entity type `unit`): user 2 decides, within `due_in`.
async fn due_template(app: &TestApp, event: &str, due_in: &str, rule: Value) -> Value {
    let mut step = json!({"name": "Review", "approver": {"type": "user", "user_id": 2},
                          "due_in": due_in});
    for (key, value) in rule.as_object().unwrap() {
        step[key] = value.clone();
    }
    let created = app
        .post(
            "templates",
            json!({"name": format!("Review {event}"), "event": event, "entity_type": "unit",
                   "steps": [step]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body
}

fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_due_in_two_seconds_are_escalated_and_rejected_on_time() {
    let mut app = spawn_pg().await;
    directors(&app).await;
    let escalating = due_template(
        &app,
        "unit.review_requested",
        "PT2S",
        json!({"on_overdue": "escalate", "escalate_to": {"role": "director"}}),
    )
    .await;
    assert_eq!(escalating["steps"][0]["due_in"], "PT2S");
    assert_eq!(escalating["steps"][0]["on_overdue"], "escalate");
    assert_eq!(
        escalating["steps"][0]["escalate_to"],
        json!({"type": "role", "role": "director"})
    );
    due_template(
        &app,
        "unit.audit_requested",
        "PT2S",
        json!({"on_overdue": "reject"}),
    )
    .await;

    let escalated = app.trigger("unit.review_requested", "unit", 1, 3).await;
    assert_eq!(escalated.status, 201, "{}", escalated.body);
    let rejected = app.trigger("unit.audit_requested", "unit", 1, 3).await;
    assert_eq!(rejected.status, 201, "{}", rejected.body);
    for started in [&escalated.body, &rejected.body] {
        let step = &started["steps"][0];
        assert_eq!(
            time(&step["due_at"]) - time(&step["activated_at"]),
            chrono::TimeDelta::seconds(2)
        );
    }
    let (escalated_id, rejected_id) = (
        escalated.body["id"].as_i64().unwrap(),
        rejected.body["id"].as_i64().unwrap(),
    );
    let step = step_id(&escalated.body, 1);

    // Due after 2 s; handled within 5 s of that.
    let app_ref = &app;
    let handled = eventually(Duration::from_secs(8), || async move {
        let a = app_ref.get(&format!("instances/{escalated_id}")).await.body;
        let b = app_ref.get(&format!("instances/{rejected_id}")).await.body;
        a["steps"][0]["eligible_user_ids"] == json!([2, 41]) && b["status"] == "rejected"
    })
    .await;
    assert!(handled, "the overdue steps were not handled within 8 s");

    let a = app.get(&format!("instances/{escalated_id}")).await.body;
    let last = a["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "step_escalated");
    assert_eq!(last["actor_user_id"], Value::Null);
    assert_eq!(last["step_id"], step);
    assert!(time(&last["at"]) >= time(&a["steps"][0]["due_at"]));
    assert_eq!(a["status"], "in_progress");
    let inbox = app.get("steps/pending?user_id=41").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert_eq!(inbox.body["items"][0]["step_id"], step, "{}", inbox.body);

    let b = app.get(&format!("instances/{rejected_id}")).await.body;
    assert_eq!(b["steps"][0]["status"], "rejected");
    assert_eq!(b["steps"][0]["acted_by_user_id"], Value::Null);
    assert_eq!(b["steps"][0]["comment"], "overdue");
    let tail: Vec<(Value, Value, Value)> = b["audit"].as_array().unwrap()[2..]
        .iter()
        .map(|e| {
            (
                e["action"].clone(),
                e["actor_user_id"].clone(),
                e["comment"].clone(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        vec![
            (json!("step_rejected"), Value::Null, json!("overdue")),
            (json!("instance_rejected"), Value::Null, json!("overdue")),
        ]
    );
    for id in [escalated_id, rejected_id] {
        let verified = app.get(&format!("instances/{id}/audit/verify")).await;
        assert_eq!(verified.body["valid"], true, "{}", verified.body);
    }

    // The escalated director decides the step.
    let approved = app.approve(step, 41).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");

    let mut conn = app.db.as_ref().unwrap().connection().await;
    let overdue_events = count(
        &mut conn,
        "SELECT count(*) AS n FROM workflow_callback_outbox WHERE kind = 'step_overdue'",
    )
    .await;
    assert_eq!(overdue_events, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_handle_each_overdue_step_once() {
    const STEPS: i64 = 24;
    let mut first = spawn_pg().await;
    let db = first.db.as_ref().unwrap();
    let mut second = serve(db.store().await, None).await;
    directors(&first).await;
    due_template(
        &first,
        "unit.review_requested",
        "PT1S",
        json!({"on_overdue": "escalate", "escalate_to": {"user_id": 41}}),
    )
    .await;
    for entity in 1..=STEPS {
        // Half through each server.
        let app = if entity % 2 == 0 { &first } else { &second };
        let started = app
            .trigger("unit.review_requested", "unit", entity, 3)
            .await;
        assert_eq!(started.status, 201, "{}", started.body);
    }

    let mut watcher = db.connection().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let handled = count(
            &mut watcher,
            "SELECT count(*) AS n FROM workflow_instance_steps WHERE overdue_at IS NOT NULL",
        )
        .await;
        if handled == STEPS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{handled} of {STEPS} overdue steps handled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more rounds of both schedulers: nothing may be handled twice meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let checks = [
        (
            "SELECT count(*) AS n FROM workflow_callback_outbox WHERE kind = 'step_overdue'",
            STEPS,
        ),
        (
            "SELECT count(DISTINCT payload->'step'->>'id') AS n FROM workflow_callback_outbox \
             WHERE kind = 'step_overdue'",
            STEPS,
        ),
        (
            "SELECT count(*) AS n FROM workflow_audit_log WHERE action = 'step_escalated'",
            STEPS,
        ),
        (
            "SELECT count(DISTINCT step_id) AS n FROM workflow_audit_log \
             WHERE action = 'step_escalated'",
            STEPS,
        ),
        (
            "SELECT count(*) AS n FROM workflow_instance_steps \
             WHERE eligible_user_ids = ARRAY[2, 41]::bigint[]",
            STEPS,
        ),
        (
            "SELECT count(*) AS n FROM workflow_inbox WHERE user_id = 41",
            STEPS,
        ),
    ];
    for (sql, expected) in checks {
        assert_eq!(count(&mut watcher, sql).await, expected, "{sql}");
    }
    for id in 1..=STEPS {
        // The demo's sample instance is 1: ours follow it.
        let verified = first
            .get(&format!("instances/{}/audit/verify", id + 1))
            .await;
        assert_eq!(verified.body["valid"], true, "{}", verified.body);
    }
    second.stop().await;
    first.stop().await;
}

/// The scheduler's look for overdue steps reads the partial index on `due_at` (which holds only
/// awaiting, unhandled steps with a due date), not the whole step table: 40,000 decided steps
/// and 10 awaiting ones with a due date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_steps_are_found_from_the_partial_index() {
    use diesel_async::SimpleAsyncConnection;

    let db = crate::helpers::TestDb::create().await;
    let store = db.store().await;
    // The demo's users and templates (its request 1 has no due date).
    crate::helpers::load_pg_demo(&store).await;
    let mut conn = db.connection().await;
    conn.batch_execute(
        "INSERT INTO workflow_instances
             (template_id, template_version, event, entity_type, entity_id, initiated_by,
              status, created_at, updated_at)
         SELECT 1, 1, 'unit.review_requested', 'unit', g, 1,
                CASE WHEN g <= 10 THEN 'in_progress' ELSE 'approved' END, now(), now()
         FROM generate_series(1, 20000) AS g;
         INSERT INTO workflow_instance_steps
             (instance_id, step_order, name, approver_user_id, eligible_user_ids, status,
              due_in, on_overdue, due_at)
         SELECT i.id, o, 'Step ' || o, 1, ARRAY[1]::bigint[],
                CASE WHEN i.entity_id <= 10 AND o = 1 THEN 'awaiting_action'
                     WHEN i.entity_id <= 10 THEN 'pending' ELSE 'approved' END,
                'PT1H', 'notify',
                CASE WHEN i.entity_id <= 10 AND o = 1 THEN now() - interval '1 minute' END
         FROM workflow_instances i CROSS JOIN generate_series(1, 2) AS o
         WHERE i.event = 'unit.review_requested';
         ANALYZE;",
    )
    .await
    .expect("bulk load");
    let found = approvals::domain::ports::WorkflowRepository::overdue_steps(
        &*store,
        chrono::Utc::now(),
        100,
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 10);
    // The adapter's own query, in its generic plan: a pooled session's prepared statement may
    // settle on that one, and then keeps it for every poll.
    let plan = store.explain_overdue_steps().await.unwrap().join("\n");
    assert!(plan.contains("workflow_instance_steps_overdue"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}
