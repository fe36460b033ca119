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
mod overdue;
mod quorum_race;
mod search_plans;
mod snapshots;
mod template_versions;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Waits until at least `n` requests of this database wait on a lock; false if they never do
/// within 20 s.
async fn until_queued(watcher: &mut AsyncPgConnection, n: i64) -> bool {
    let waiting = count_until(
        watcher,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
        n,
        std::time::Duration::from_secs(20),
    )
    .await;
    waiting >= n
}

/// Runs `sql` (see [`count`]) every 20 ms until it counts at least `n` or `within` has passed;
/// returns the last count.
async fn count_until(
    conn: &mut AsyncPgConnection,
    sql: &str,
    n: i64,
    within: std::time::Duration,
) -> i64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let counted = count(conn, sql).await;
        if counted >= n || tokio::time::Instant::now() >= deadline {
            return counted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs `sql`, which must select one `bigint` column named `n`.
async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}
