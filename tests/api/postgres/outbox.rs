//! PostgreSQL callback outbox: an event committed with its decision survives a crash and is
//! delivered after a restart, failed deliveries are retried, and a row nobody can read is parked
//! without holding up the others.

use approvals::domain::model::Done;
use std::sync::Arc;
use std::time::Duration;

use approvals::app;
use approvals::domain::model::{Comment, DecisionRequest, Verdict};
use approvals::domain::ports::WorkflowUseCases;
use diesel_async::SimpleAsyncConnection;
use tokio::sync::Notify;

use super::{count, count_until};
use crate::fixtures::{sid, uid};
use crate::helpers::{TestDb, eventually, load_pg_demo, serve, spawn_pg, step_id};

/// A decision committed while no dispatcher runs (as if the process died right after the
/// commit) is delivered by the next process that starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_event_left_by_a_crash_is_delivered_after_restart() {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;

    // Decide through the service alone: commit happens, nothing delivers.
    let service = app::service(Arc::clone(&store), Arc::new(Notify::new()));
    let decided = service
        .decide(
            DecisionRequest {
                step_id: sid(1),
                acted_by: uid(1),
                verdict: Verdict::Reject {
                    comment: Comment::new("Customer withdrew").unwrap(),
                },
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    drop(service);
    let mut conn = db.connection().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_callback_outbox \
             WHERE delivered_at IS NULL AND kind = 'on_rejected'"
        )
        .await,
        1
    );

    // "Restart": a new process serving the same database.
    let mut app = serve(db.store().await, None).await;
    let delivered = eventually(Duration::from_secs(10), || async {
        !app.callbacks.outcomes().is_empty()
    })
    .await;
    assert!(
        delivered,
        "the pending callback was not delivered after restart"
    );
    let events = app.callbacks.outcomes();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].instance_id, decided.id);
    assert_eq!(events[0].kind.as_str(), "on_rejected");
    assert_eq!(events[0].comment.as_deref(), Some("Customer withdrew"));
    let marked = eventually(Duration::from_secs(5), || async {
        let mut conn = db.connection().await;
        count(
            &mut conn,
            "SELECT count(*) AS n FROM workflow_callback_outbox \
             WHERE delivered_at IS NOT NULL AND kind = 'on_rejected'",
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
        let ids: std::collections::BTreeSet<String> = app
            .callbacks
            .items()
            .into_iter()
            .map(|i| i.event_id)
            .collect();
        // The demo's sample instance, then this one's three events.
        ids.len() == 4
    })
    .await;
    assert!(
        delivered,
        "delivery was not retried: {:?}",
        app.callbacks.items()
    );
    // The first two deliveries failed (whichever events they were), then all succeeded.
    let marked = eventually(Duration::from_secs(5), || async {
        let mut conn = app.db.as_ref().unwrap().connection().await;
        count(
            &mut conn,
            "SELECT coalesce(sum(attempts), 0)::bigint AS n FROM workflow_callback_outbox \
             WHERE delivered_at IS NOT NULL",
        )
        .await
            == 6
    })
    .await;
    assert!(marked, "two failures, then four successes");
    app.stop().await;
}

/// An outbox row nobody can read is parked with its reason; the others are still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_outbox_row_does_not_hold_up_the_others() {
    let mut app = spawn_pg().await;
    let mut conn = app.db.as_ref().unwrap().connection().await;
    conn.batch_execute(
        "INSERT INTO workflow_callback_outbox (instance_id, kind, payload, created_at, due_at, sequence) \
         VALUES (1, 'on_approved', '{\"unexpected\": true}', now() - interval '1 minute', now() - interval '1 minute', 1000)",
    )
    .await
    .unwrap();
    let instance = app
        .trigger("unit.price_update_requested", "unit", 6, 1)
        .await
        .body;
    app.reject(step_id(&instance, 1), 1, "Not now").await;
    let delivered = eventually(Duration::from_secs(10), || async {
        app.callbacks.outcomes().len() == 1
    })
    .await;
    assert!(delivered, "the readable event was not delivered");
    assert_eq!(
        app.callbacks.outcomes()[0].instance_id.get(),
        instance["id"].as_i64().unwrap()
    );
    // The unreadable row came due a minute ago, before the last 5 s that a woken round looks
    // at: the round over the whole queue (every poll interval) parks it.
    let parked = "SELECT count(*) AS n FROM workflow_callback_outbox \
         WHERE delivered_at IS NULL AND last_error LIKE 'unreadable payload%' \
         AND due_at > now() + interval '12 hours'";
    assert_eq!(
        count_until(&mut conn, parked, 1, Duration::from_secs(10)).await,
        1,
        "the unreadable row was not parked"
    );
    app.stop().await;
}

/// A claim bounded by `due_since` (a round a change woke) starts its scan of the due index at
/// its bound, in the generic plan a pooled session may settle on: the dead entries that every
/// claim and delivery leaves below it (until a vacuum) are never read. An unbounded claim (the
/// round every poll interval) scans the same index from its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_claim_starts_its_index_scan_at_its_bound() {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    let mut conn = db.connection().await;
    // 20,000 delivered events and 10 due ones, on the demo's first instance.
    conn.batch_execute(
        "INSERT INTO workflow_callback_outbox
             (instance_id, kind, payload, created_at, due_at, delivered_at, sequence)
         SELECT 1, 'on_approved', '{}'::jsonb, now(), now() - g * interval '1 second',
                CASE WHEN g > 10 THEN now() END, 1000 + g
         FROM generate_series(1, 20000) AS g;
         ANALYZE workflow_callback_outbox;",
    )
    .await
    .expect("bulk load");
    let bounded = store
        .explain_claim_callbacks(true)
        .await
        .unwrap()
        .join("\n");
    assert!(
        bounded.contains("Index Scan using workflow_callback_outbox_due"),
        "{bounded}"
    );
    let condition = bounded
        .lines()
        .find(|l| l.contains("Index Cond"))
        .unwrap_or_default();
    assert!(
        condition.contains("due_at >=") && condition.contains("due_at <="),
        "the bound is not where the scan starts:\n{bounded}"
    );
    let whole = store
        .explain_claim_callbacks(false)
        .await
        .unwrap()
        .join("\n");
    assert!(
        whole.contains("workflow_callback_outbox_due") && !whole.contains("Seq Scan"),
        "{whole}"
    );
}
