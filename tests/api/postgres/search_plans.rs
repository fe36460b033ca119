//! PostgreSQL-only: every combination of search criteria is answered from an index, never by
//! reading the whole instance table. 50,000 instances (bulk SQL, straight into this test's own
//! database) make a sequential scan the planner's choice wherever no index fits; the plans are
//! the adapter's own query for each combination, planned as the adapter plans it
//! (`PgStore::explain_search`).

use approvals::domain::model::{
    EntityId, EntityType, EventName, InstanceFilter, InstanceId, InstanceStatus, UserId,
};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::count;
use crate::fixtures::{CANCELLATION, PRICE_UPDATE};
use crate::helpers::{TestDb, load_pg_demo};

const INSTANCES: i64 = 50_000;

/// 50,000 instances over the demo's three events and templates; 1,000 initiators; about 1 in
/// 100 in progress, 1 in 100 cancelled, the rest approved or rejected; two steps each.
const BULK: &str = "
    INSERT INTO users (id, name) SELECT u, 'Initiator ' || u FROM generate_series(100, 1099) u;
    INSERT INTO workflow_instances
        (template_id, template_version, event, entity_type, entity_id, initiated_by, status,
         created_at, updated_at)
    SELECT 1 + g % 3, 1,
           (ARRAY['booking.cancellation_requested', 'unit.price_update_requested',
                  'commission.approval_requested'])[1 + g % 3],
           (ARRAY['booking', 'unit', 'commission'])[1 + g % 3],
           -- An entity has a few instances in a row: at most one of them is active.
           1 + g / 12,
           100 + g % 1000,
           CASE WHEN g % 100 = 0 THEN 'in_progress' WHEN g % 100 = 1 THEN 'cancelled'
                WHEN g % 5 < 3 THEN 'approved' ELSE 'rejected' END,
           now() - make_interval(secs => 50000 - g), now() - make_interval(secs => 50000 - g)
    FROM generate_series(1, 50000) AS g ORDER BY g;
    INSERT INTO workflow_instance_steps
        (instance_id, step_order, name, approver_user_id, eligible_user_ids, status)
    SELECT i.id, o, 'Step ' || o, 1, ARRAY[1]::bigint[], 'approved'
    FROM workflow_instances i CROSS JOIN generate_series(1, 2) AS o
    WHERE i.initiated_by >= 100
    ORDER BY i.id, o;
    ANALYZE;";

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

async fn explain(conn: &mut AsyncPgConnection, sql: &str) -> String {
    let lines: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(conn)
        .await
        .unwrap();
    lines
        .into_iter()
        .map(|p| p.line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn filter(
    entity: Option<(&str, Option<i64>)>,
    event: Option<&str>,
    status: Option<InstanceStatus>,
    initiated_by: Option<i64>,
) -> InstanceFilter {
    InstanceFilter::new(
        entity.map(|(kind, _)| EntityType::new(kind).unwrap()),
        entity
            .and_then(|(_, id)| id)
            .map(|id| EntityId::new(id).unwrap()),
        event.map(|e| EventName::new(e).unwrap()),
        status,
        initiated_by.map(|u| UserId::new(u).unwrap()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_combination_is_served_by_an_index() {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    let mut conn = db.connection().await;
    conn.batch_execute(BULK).await.expect("bulk load");
    let total = count(&mut conn, "SELECT count(*) AS n FROM workflow_instances").await;
    assert!(total > INSTANCES, "{total} instances");
    let newest = count(&mut conn, "SELECT max(id) AS n FROM workflow_instances").await;

    let plan_of = async |filter: &InstanceFilter, after: Option<i64>| -> String {
        let after = after.map(|a| InstanceId::new(a).unwrap());
        store
            .explain_search(filter, 51, after)
            .await
            .unwrap()
            .join("\n")
    };

    let entities = [None, Some(("booking", None)), Some(("unit", Some(4_000)))];
    let events = [None, Some(CANCELLATION), Some(PRICE_UPDATE)];
    let statuses = [
        None,
        Some(InstanceStatus::Pending),
        Some(InstanceStatus::InProgress),
        Some(InstanceStatus::Approved),
        Some(InstanceStatus::Cancelled),
    ];
    let initiators = [None, Some(150)];
    let cursors = [None, Some(newest / 2), Some(10)];
    let mut checked = 0;
    for entity in entities {
        for event in events {
            for status in statuses {
                for initiated_by in initiators {
                    for after in cursors {
                        let filter = filter(entity, event, status, initiated_by);
                        let plan = plan_of(&filter, after).await;
                        assert!(
                            !plan.contains("Seq Scan"),
                            "{filter:?} after {after:?} scans the table:\n{plan}"
                        );
                        assert!(plan.contains("Index"), "{filter:?}:\n{plan}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 5 * 2 * 3);

    // The index each selective criterion is for.
    let uses = [
        (filter(None, None, None, None), "workflow_instances_pkey"),
        (
            filter(Some(("unit", Some(4_000))), None, None, None),
            "workflow_instances_by_entity",
        ),
        (
            filter(None, None, Some(InstanceStatus::Cancelled), None),
            "workflow_instances_by_status",
        ),
        (
            filter(None, None, Some(InstanceStatus::InProgress), None),
            "workflow_instances_by_status",
        ),
        (
            filter(None, None, None, Some(150)),
            "workflow_instances_by_initiator",
        ),
    ];
    for (filter, index) in uses {
        let plan = plan_of(&filter, None).await;
        assert!(
            plan.contains(index),
            "{filter:?} should use {index}:\n{plan}"
        );
    }

    // A page's steps: one query for all its instances, by the (instance, order) key.
    let steps = explain(
        &mut conn,
        "SELECT s.* FROM workflow_instance_steps s \
         WHERE s.instance_id = ANY(ARRAY(SELECT id FROM workflow_instances ORDER BY id DESC LIMIT 51)) \
         ORDER BY s.instance_id, s.step_order",
    )
    .await;
    assert!(
        !steps.contains("Seq Scan on workflow_instance_steps"),
        "{steps}"
    );
}
