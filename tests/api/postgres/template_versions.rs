//! PostgreSQL-only: the template versions table. Stored versions can't be rewritten (the
//! database refuses UPDATE, DELETE and TRUNCATE), and the migration that introduced the table
//! stored the current version of every template that existed before it.

use approvals::domain::ports::WorkflowRepository;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::count;
use crate::fixtures::tid;
use crate::helpers::{TestDb, load_pg_demo};

const UP: &str = include_str!("../../../migrations/2026-11-27-000110_template_versions/up.sql");
const DOWN: &str = include_str!("../../../migrations/2026-11-27-000110_template_versions/down.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_versions_refuse_update_delete_and_truncate() {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    let mut conn = db.connection().await;
    let sql = "SELECT count(*) AS n FROM workflow_template_versions";
    assert_eq!(count(&mut conn, sql).await, 4, "the demo's four version 1s");
    for sql in [
        "UPDATE workflow_template_versions SET name = 'tampered'",
        "DELETE FROM workflow_template_versions",
        "TRUNCATE workflow_template_versions",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count(&mut conn, sql).await, 4);
    let first = store.template_version(tid(1), 1).await.unwrap();
    assert_eq!(first, store.template(tid(1)).await.unwrap());
}

/// Templates written before the migration (as the previous schema held them) get their
/// current version stored, steps in order, and read back as the template itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_stores_the_current_version_of_existing_templates() {
    let db = TestDb::create().await;
    let mut conn = db.connection().await;
    conn.batch_execute(DOWN)
        .await
        .expect("the migration reverts");
    conn.batch_execute(
        "INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active) \
         VALUES (1, 'Refund', 'booking.refund_requested', 'booking', 4, true), \
                (2, 'Old discount', 'unit.discount_requested', 'unit', 1, false); \
         INSERT INTO workflow_template_steps \
             (template_id, step_order, name, approver_user_id, approver_role) \
         VALUES (1, 2, 'Sales', 1, NULL), (1, 1, 'Finance', NULL, 'finance_manager'), \
                (2, 1, 'Anyone', 3, NULL);",
    )
    .await
    .expect("templates of the previous schema");
    conn.batch_execute(UP).await.expect("the migration applies");

    let store = db.store().await;
    for (id, version) in [(1, 4), (2, 1)] {
        let current = store.template(tid(id)).await.unwrap();
        assert_eq!(current.version, version);
        assert!(!current.forbid_self_approval, "template {id}");
        assert_eq!(
            store.template_version(tid(id), version).await.unwrap(),
            current,
            "template {id}"
        );
    }
    let refund = store.template(tid(1)).await.unwrap();
    let names: Vec<_> = refund.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Finance", "Sales"]);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_template_versions"
        )
        .await,
        2,
        "only the current versions: earlier ones were never kept"
    );
}
