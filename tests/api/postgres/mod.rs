//! PostgreSQL-only guarantees, checked on real databases (a fresh one per test): the audit
//! trail's proof and the service's least-privilege role (`audit_proof`), the
//! append-only audit trigger and the indexes (`guarantees`), the eligibility snapshot
//! (`snapshots`), the row locks that make racing approvers safe (`locks`) and a cancel racing
//! approvals (`cancel_race`), the outbox surviving a crash (`outbox`), persistence across
//! restarts and 503 when the database is gone (`availability`), and stored template versions
//! (`template_versions`). Raw SQL here bypasses the adapter on purpose.

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

mod audit_proof;
mod availability;
mod cancel_race;
mod guarantees;
mod honest;
mod idempotency;
mod locks;
mod outbox;
mod quorum_race;
mod search_plans;
mod snapshots;
mod template_versions;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Runs `sql`, which must select one `bigint` column named `n`.
async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}
