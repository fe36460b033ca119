//! PostgreSQL-only guarantees of the schema: the audit log refuses to change even for a client
//! that bypasses the adapter, the hot queries are answered from their indexes, and seeding twice
//! changes nothing.

use std::sync::Arc;

use approvals::{app, demo};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tokio::sync::Notify;

use super::count;
use crate::helpers::{TestDb, load_pg_demo, spawn_pg};

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

/// A delegate's inbox reads each user's rows with one range scan of the inbox key (the shape of
/// the adapter's statement, `outbound/postgres/inbox.rs`), and the delegations to an actor
/// are found through the delegate index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_inbox_and_its_delegations_use_their_indexes() {
    let app = spawn_pg().await;
    let mut conn = app.db.as_ref().unwrap().connection().await;
    // A handful of rows would be read and sorted whatever the indexes: with those plans off,
    // a sort left in the plan would mean the index can't give each user's rows in order (the
    // planner still sorts when it has no other way).
    conn.batch_execute(
        "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off",
    )
    .await
    .unwrap();
    let inbox = explain(
        &mut conn,
        "SELECT x.step_id FROM unnest(ARRAY[1, 2]::int8[]) AS who(user_id) \
         CROSS JOIN LATERAL (SELECT b.user_id, b.activated_at, b.step_id FROM workflow_inbox b \
           WHERE b.user_id = who.user_id \
             AND (b.activated_at, b.step_id) > ('1970-01-01T00:00:00Z'::timestamptz, 0) \
           ORDER BY b.activated_at, b.step_id LIMIT 51) x",
    )
    .await;
    assert!(inbox.contains("workflow_inbox_pkey"), "{inbox}");
    assert!(
        !inbox.contains("Sort"),
        "each user's rows come in index order: {inbox}"
    );
    let lookup = explain(
        &mut conn,
        "SELECT d.user_id FROM workflow_delegations d JOIN users u ON u.id = d.user_id \
         WHERE d.to_user_id = 1 AND u.active",
    )
    .await;
    assert!(
        lookup.contains("workflow_delegations_by_delegate"),
        "{lookup}"
    );
    drop(app);
}

/// Seeding a second time (the `seed` command run twice) loads nothing twice: the demo reports
/// that it is there already, and the property records are left as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_twice_changes_nothing() {
    const TABLES: [(&str, i64); 9] = [
        ("users", 3),
        ("user_roles", 3),
        ("workflow_templates", 4),
        ("workflow_template_steps", 8),
        ("workflow_instances", 1),
        ("projects", 2),
        ("units", 10),
        ("bookings", 5),
        ("commissions", 5),
    ];
    let db = TestDb::create().await;
    let store = db.store().await;
    let demo = load_pg_demo(&store).await;
    let mut conn = db.connection().await;
    for (table, rows) in TABLES {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        assert_eq!(
            count(&mut conn, &sql).await,
            rows,
            "{table} after the first seed"
        );
    }

    let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
    let fresh = demo::load(&service, &demo).await.unwrap();
    assert!(!fresh, "the second load reports the demo as already there");
    store
        .load_property_records(&demo.properties)
        .await
        .expect("loading the property records again is harmless");
    for (table, rows) in TABLES {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        assert_eq!(
            count(&mut conn, &sql).await,
            rows,
            "{table} after the second seed"
        );
    }
}
