//! Audit you can prove, on PostgreSQL: the least-privilege role the service runs as is refused
//! every way of rewriting history, yet serves every use case; a superuser who goes around the
//! triggers is caught by `verify`; the SQL form of the chain agrees with the service's; and
//! checking a 1,000-entry trail takes under 10 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use approvals::domain::audit_chain;
use approvals::domain::model::{AuditVerification, InstanceId};
use approvals::domain::ports::WorkflowRepository;
use approvals::outbound::postgres::{self, PgConfig, PgStore};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, load_pg_demo, serve, spawn_pg, step_id};

/// The role the migrations create for the service.
const APP_ROLE: &str = "approvals_app";

/// `url` with the user replaced by the service's role (no password: the test server trusts
/// local connections, as `scripts/lib.sh` sets it up).
fn as_app_role(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{APP_ROLE}@{host}")
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
}

async fn first_bad_in_sql(conn: &mut AsyncPgConnection, instance: i64) -> Option<i64> {
    diesel::sql_query(format!("SELECT workflow_audit_first_bad({instance}) AS id"))
        .get_result::<Id>(conn)
        .await
        .unwrap()
        .id
}

async fn verify(app: &TestApp, instance: i64) -> Value {
    let reply = app.get(&format!("instances/{instance}/audit/verify")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// The id of the entry with `action` on `step`.
fn entry_id(instance: &Value, action: &str, step: i64) -> i64 {
    instance["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == action && e["step_id"] == step)
        .and_then(|e| e["id"].as_i64())
        .unwrap_or_else(|| panic!("no {action} on step {step}: {instance}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_can_log_in_but_not_rewrite_history() {
    let mut app = spawn_pg().await;
    let db = app.db.as_ref().unwrap();
    // A decided step: sample instance 1's step 1, approved by user 1.
    let sample = app.get("instances/1").await.body;
    let decided = step_id(&sample, 1);
    assert_eq!(app.approve(decided, 1).await.status, 200);

    let mut owner = db.connection().await;
    #[derive(diesel::QueryableByName)]
    struct Facts {
        #[diesel(sql_type = Bool)]
        superuser: bool,
        #[diesel(sql_type = Bool)]
        login: bool,
        #[diesel(sql_type = Text)]
        audit_owner: String,
    }
    let facts: Facts = diesel::sql_query(format!(
        "SELECT r.rolsuper AS superuser, r.rolcanlogin AS login,
                (SELECT tableowner::text FROM pg_tables WHERE tablename = 'workflow_audit_log')
                    AS audit_owner
         FROM pg_roles r WHERE r.rolname = '{APP_ROLE}'"
    ))
    .get_result(&mut owner)
    .await
    .unwrap();
    assert!(facts.login && !facts.superuser);
    assert_ne!(facts.audit_owner, APP_ROLE);

    let mut conn = AsyncPgConnection::establish(&as_app_role(&db.url))
        .await
        .expect("the service's role logs in");
    let refused = [
        "UPDATE workflow_audit_log SET comment = 'tampered'",
        "DELETE FROM workflow_audit_log",
        "TRUNCATE workflow_audit_log",
        "ALTER TABLE workflow_audit_log DISABLE TRIGGER workflow_audit_log_no_update_delete",
        "ALTER TABLE workflow_audit_log DROP COLUMN hash",
        "SET session_replication_role = replica",
        "ALTER TABLE workflow_instance_steps DISABLE TRIGGER workflow_instance_steps_keep_decisions",
        &format!("UPDATE workflow_instance_steps SET acted_by_user_id = 2 WHERE id = {decided}"),
        &format!(
            "UPDATE workflow_instance_steps SET status = 'awaiting_action' WHERE id = {decided}"
        ),
        &format!("DELETE FROM workflow_instance_steps WHERE id = {decided}"),
        "DROP TABLE workflow_audit_log",
        "CREATE ROLE mallory SUPERUSER",
    ];
    for sql in refused {
        let result = conn.batch_execute(sql).await;
        assert!(result.is_err(), "the app role could run: {sql}");
    }
    // What it must still do: read the trail, append to it (the service does, in its writes).
    conn.batch_execute("SELECT count(*) FROM workflow_audit_log")
        .await
        .unwrap();
    // Nothing changed, as the owner sees it.
    let after = app.get("instances/1").await.body;
    let before = sample["audit"].as_array().unwrap();
    assert_eq!(
        &after["audit"].as_array().unwrap()[..before.len()],
        &before[..]
    );
    assert_eq!(after["steps"][0]["acted_by_user_id"], 1);
    assert_eq!(verify(&app, 1).await["valid"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_as_the_app_role() {
    let db = TestDb::create().await;
    // Loaded as the owner (the demo's property records are seeded by the owner too).
    load_pg_demo(&db.store().await).await;
    let url = as_app_role(&db.url);
    // `serve` begins by applying migrations: as the app role it finds none pending.
    assert_eq!(
        postgres::run_migrations(&url).await.unwrap(),
        Vec::<String>::new()
    );
    let store = Arc::new(PgStore::connect(&url, &PgConfig::default()).await.unwrap());
    let mut app = serve(store, Some(db)).await;

    let created = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let instance = created.body["id"].as_i64().unwrap();
    // Keyed, so the idempotency table is written, then read for the replay.
    for _ in 0..2 {
        let keyed = app
            .send(
                app.client
                    .post(format!(
                        "{}/api/v1/workflow/steps/{}/approve",
                        app.base,
                        step_id(&created.body, 1)
                    ))
                    .header("Idempotency-Key", "app-role-1")
                    .json(&json!({"acted_by_user_id": 1})),
            )
            .await;
        assert_eq!(keyed.status, 200, "{}", keyed.body);
    }
    let rejected = app.reject(step_id(&created.body, 2), 2, "no").await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    let other = app
        .trigger("unit.price_update_requested", "unit", 4, 1)
        .await;
    assert_eq!(other.status, 201);
    let cancelled = app
        .post(
            &format!("instances/{}/cancel", other.body["id"]),
            json!({"acted_by_user_id": 1}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let template = app
        .post(
            "templates",
            json!({"name": "T", "event": "app.role", "entity_type": "unit",
                   "steps": [{"name": "A", "approver": {"type": "user", "user_id": 1}}]}),
        )
        .await;
    assert_eq!(template.status, 201, "{}", template.body);
    let versioned = app
        .post(
            &format!("templates/{}/versions", template.body["id"]),
            json!({"name": "T2"}),
        )
        .await;
    assert_eq!(versioned.status, 201, "{}", versioned.body);
    let user = app
        .send(
            app.client
                .put(format!("{}/api/v1/workflow/users/77", app.base))
                .json(&json!({"name": "Seventy", "roles": ["auditor"]})),
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.body);
    for path in [
        "steps/pending?user_id=2",
        "instances?status=rejected",
        "users?role=auditor",
    ] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
    }
    assert_eq!(
        verify(&app, instance).await,
        json!({"valid": true, "entries": 6})
    );
    // The outbox is delivered (claimed and marked) by the same role.
    let delivered = crate::helpers::eventually(Duration::from_secs(5), || async {
        app.callbacks.delivered().len() >= 2
    })
    .await;
    assert!(delivered, "callbacks: {:?}", app.callbacks.delivered());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superuser_tampering_with_an_entry_or_a_step_is_detected() {
    let mut app = spawn_pg().await;
    let mut conn = app.db.as_ref().unwrap().connection().await;
    let a = app
        .trigger("booking.cancellation_requested", "booking", 3, 3)
        .await
        .body;
    let b = app
        .trigger("booking.cancellation_requested", "booking", 4, 3)
        .await
        .body;
    let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let a_after = app.approve(step_id(&a, 1), 1).await.body;
    let b_after = app.approve(step_id(&b, 1), 1).await.body;
    for id in [a_id, b_id] {
        assert_eq!(verify(&app, id).await, json!({"valid": true, "entries": 4}));
        // The chain in SQL (the migration's backfill) agrees with the service's.
        assert_eq!(first_bad_in_sql(&mut conn, id).await, None);
    }

    // An audit entry, around the append-only trigger.
    let entry = entry_id(&a_after, "step_approved", step_id(&a, 1));
    conn.batch_execute(&format!(
        "SET session_replication_role = replica;
         UPDATE workflow_audit_log SET actor_user_id = 2 WHERE id = {entry};
         SET session_replication_role = origin;"
    ))
    .await
    .unwrap();
    assert_eq!(
        verify(&app, a_id).await,
        json!({"valid": false, "first_bad_entry_id": entry})
    );
    assert_eq!(first_bad_in_sql(&mut conn, a_id).await, Some(entry));

    // A decided step, with its trigger disabled by the owner.
    let step = step_id(&b, 1);
    conn.batch_execute(&format!(
        "ALTER TABLE workflow_instance_steps DISABLE TRIGGER workflow_instance_steps_keep_decisions;
         UPDATE workflow_instance_steps SET acted_by_user_id = 4 WHERE id = {step};
         ALTER TABLE workflow_instance_steps ENABLE TRIGGER workflow_instance_steps_keep_decisions;"
    ))
    .await
    .unwrap();
    let decision = entry_id(&b_after, "step_approved", step);
    assert_eq!(
        verify(&app, b_id).await,
        json!({"valid": false, "first_bad_entry_id": decision})
    );
    assert_eq!(first_bad_in_sql(&mut conn, b_id).await, Some(decision));
    // Unknown instance: 404, as for the instance itself.
    assert_eq!(app.get("instances/999999/audit/verify").await.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_entry_trail_verifies_in_under_10_ms() {
    let mut app = spawn_pg().await;
    // 500 steps, each for user 1: created + activated, then each approval adds two entries.
    let steps: Vec<Value> = (1..=500)
        .map(|n| json!({"name": format!("Step {n}"), "approver": {"type": "user", "user_id": 1}}))
        .collect();
    let template = app
        .post(
            "templates",
            json!({"name": "Long", "event": "long.trail", "entity_type": "unit", "steps": steps}),
        )
        .await;
    assert_eq!(template.status, 201, "{}", template.body);
    let created = app.trigger("long.trail", "unit", 1, 3).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let instance = created.body["id"].as_i64().unwrap();
    for order in 1..=500 {
        let reply = app.approve(step_id(&created.body, order), 1).await;
        assert_eq!(reply.status, 200, "step {order}: {}", reply.body);
    }
    assert_eq!(
        verify(&app, instance).await,
        json!({"valid": true, "entries": 1002})
    );
    // The check itself, on the trail as read from PostgreSQL. (The whole request, read
    // included, is timed against the release binary by scripts/test_api.sh: this debug build
    // decodes rows several times slower than the service does.)
    let store = app.db.as_ref().unwrap().store().await;
    let trail = store
        .instance(InstanceId::new(instance).unwrap())
        .await
        .unwrap();
    let mut best = Duration::MAX;
    for _ in 0..7 {
        let started = Instant::now();
        let verdict = audit_chain::verify(&trail);
        best = best.min(started.elapsed());
        assert_eq!(verdict, AuditVerification::Valid { entries: 1002 });
    }
    assert!(best < Duration::from_millis(10), "best of 7: {best:?}");
    app.stop().await;
}
