//! Direct SQL on the bench database: the two helpers the preloads and scenarios use, and the
//! inbox query plan printed under the table.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// The one `bigint` that `sql` returns in a column named `v`.
pub async fn scalar(conn: &mut AsyncPgConnection, sql: &str) -> Result<i64, String> {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .await
        .map(|r| r.v)
        .map_err(|e| format!("{sql}: {e}"))
}

/// Runs `sql`, which may hold several statements.
pub async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), String> {
    conn.batch_execute(sql)
        .await
        .map_err(|e| format!("{e}\n{sql}"))
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The executed plan of the inbox page of user 10001, one line each: it shows whether the page
/// stays one index range scan on the preloaded tables.
pub async fn inbox_plan(conn: &mut AsyncPgConnection) -> Result<Vec<String>, String> {
    let lines: Vec<PlanLine> = diesel::sql_query(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
         SELECT s.id, s.step_order, s.name, s.approver_user_id, s.approver_role, s.activated_at,
                i.id, i.event, i.entity_type, i.entity_id
         FROM workflow_inbox b
         JOIN workflow_instance_steps s ON s.id = b.step_id
         JOIN workflow_instances i ON i.id = s.instance_id
         WHERE b.user_id = 10001 ORDER BY b.activated_at, b.step_id LIMIT 50",
    )
    .load(conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}
