//! The search scenario: one client finding an entity's instances (`GET /instances?entity_type=
//! ..&entity_id=..`) once the database has its full size, and the executed plans of the search
//! by entity, by status and by initiator at that size, printed under the table.
//!
//! The plans are of the statement the service sends (the same columns, criteria, order and
//! limit), with the values written in: the service plans its searches for their values
//! (`force_custom_plan`), so this is the plan it gets.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Plan;
use crate::db::scalar;
use crate::load::drive;
use crate::report::Row;
use crate::scenarios::Tally;
use crate::server::Server;

/// What the service selects for a page (its `InstanceRow`).
const COLUMNS: &str = "id, template_id, template_version, event, entity_type, entity_id, \
                       initiated_by, status, context, created_at, updated_at, completed_at";

/// A search's executed plan, labelled.
pub struct SearchPlan {
    pub label: String,
    pub lines: Vec<String>,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// Runs the entity search over HTTP, `plan.search_requests` times on scattered units of the
/// inbox preload (one instance each), after checking that one such search finds its instance.
pub async fn search(
    tally: &mut Tally,
    conn: &mut AsyncPgConnection,
    server: &Server,
    plan: &Plan,
) -> Result<(), String> {
    let total_instances = scalar(conn, "SELECT count(*) AS v FROM workflow_instances").await?;
    let units = plan.inbox_instances as u64;
    let probe: serde_json::Value = reqwest::get(format!(
        "{}/api/v1/workflow/instances?entity_type=unit&entity_id={units}",
        server.base
    ))
    .await
    .map_err(|e| e.to_string())?
    .json()
    .await
    .map_err(|e| e.to_string())?;
    let found = probe["items"].as_array().map_or(0, Vec::len);
    if found != 1 || probe["items"][0]["entity_id"] != units {
        tally.errors += 1;
        eprintln!("the entity search did not find unit {units}: {probe}");
    }
    let base = server.base.clone();
    let requests = plan.search_requests as u64;
    let measured = drive(1, 3600.0, 200, move |client, n| {
        (n < requests).then(|| {
            // 7919 is prime: n * 7919 % units scatters the units over the whole table.
            let unit = 1 + (n * 7919) % units;
            client.get(format!(
                "{base}/api/v1/workflow/instances?entity_type=unit&entity_id={unit}"
            ))
        })
    })
    .await;
    tally.errors += measured.errors;
    tally.push(Row {
        label: "search GET, 1 client".into(),
        note: format!(
            "by entity; {total_instances} instances, {} requests, 1 instance with 3 steps a page",
            measured.ok
        ),
        service: Some(measured),
        same_sql: None,
        ceiling: None,
    });
    Ok(())
}

/// The executed plans of the page query by entity, by status and by initiator (page size 50,
/// so 51 rows asked for, as the service does).
pub async fn plans(conn: &mut AsyncPgConnection, plan: &Plan) -> Result<Vec<SearchPlan>, String> {
    let unit = plan.inbox_instances / 2;
    let cases = [
        (
            format!("entity (unit {unit})"),
            format!("entity_type = 'unit' AND entity_id = {unit}"),
        ),
        (
            "status (in_progress)".to_owned(),
            "status = 'in_progress'".to_owned(),
        ),
        (
            "initiator (user 10501)".to_owned(),
            "initiated_by = 10501".to_owned(),
        ),
    ];
    // As the service's sessions run.
    crate::db::exec(conn, "SET max_parallel_workers_per_gather = 0").await?;
    let mut plans = Vec::new();
    for (label, criteria) in cases {
        let sql = format!(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
             SELECT {COLUMNS} FROM workflow_instances WHERE {criteria} ORDER BY id DESC LIMIT 51"
        );
        let lines: Vec<PlanLine> = diesel::sql_query(&sql)
            .load(conn)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        plans.push(SearchPlan {
            label,
            lines: lines.into_iter().map(|l| l.line).collect(),
        });
    }
    Ok(plans)
}
