//! Against the PostgreSQL server the other tests use (`TEST_DATABASE_URL`, else the local
//! one), on a connection of its own and a temporary table, so nothing outlives the test.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::*;
use crate::domain::WorkflowError;

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn connection() -> Conn {
    let mut conn = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("PostgreSQL must be reachable at TEST_DATABASE_URL (scripts/test.sh provides one)");
    conn.batch_execute("CREATE TEMPORARY TABLE t (v int8)")
        .await
        .unwrap();
    conn
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

/// Whether the pool would discard the connection (it does what diesel-async's pool asks).
fn broken(conn: &mut Conn) -> bool {
    AnsiTransactionManager::is_broken_transaction_manager(conn)
}

async fn rows(conn: &mut Conn) -> i64 {
    diesel::sql_query("SELECT count(*) AS v FROM t")
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .v
}

#[derive(QueryableByName)]
struct Now {
    #[diesel(sql_type = Text)]
    v: String,
}

/// `now()`, which is the start of the current transaction.
async fn now(conn: &mut Conn) -> Result<String, TxError> {
    let now = diesel::sql_query("SELECT now()::text AS v")
        .get_result::<Now>(conn)
        .await?;
    Ok(now.v)
}

/// The work's statements run inside the one transaction `BEGIN` opened before them: `now()` is
/// its start, the same in every statement (in autocommit mode each statement would be its own
/// transaction, with its own start).
#[tokio::test]
async fn the_work_runs_inside_the_transaction_begun_with_it() {
    let mut conn = connection().await;
    let (first, last) = pipelined(&mut conn, async |conn| {
        let first = now(conn).await?;
        diesel::sql_query("SELECT pg_sleep(0.02)")
            .execute(conn)
            .await?;
        Ok((first, now(conn).await?))
    })
    .await
    .unwrap();
    assert_eq!(first, last, "both statements ran in one transaction");
}

#[tokio::test]
async fn work_that_succeeds_is_committed() {
    let mut conn = connection().await;
    pipelined(&mut conn, async |conn| {
        diesel::sql_query("INSERT INTO t VALUES (1)")
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(rows(&mut conn).await, 1);
    assert!(!broken(&mut conn));
}

/// A failure (the work's own, or a statement's) rolls everything back, and the connection is
/// left outside any transaction, ready for the next one.
#[tokio::test]
async fn work_that_fails_is_rolled_back_and_the_connection_stays_usable() {
    let mut conn = connection().await;
    let refused = pipelined(&mut conn, async |conn| -> Result<(), TxError> {
        diesel::sql_query("INSERT INTO t VALUES (1)")
            .execute(conn)
            .await?;
        Err(WorkflowError::not_found("the thing").into())
    })
    .await;
    assert!(refused.is_err());
    let failed = pipelined(&mut conn, async |conn| -> Result<(), TxError> {
        diesel::sql_query("INSERT INTO t VALUES (2)")
            .execute(conn)
            .await?;
        diesel::sql_query("SELECT 1 / 0").execute(conn).await?;
        Ok(())
    })
    .await;
    assert!(failed.is_err());
    assert_eq!(rows(&mut conn).await, 0, "both were rolled back");
    assert!(!broken(&mut conn));
    pipelined(&mut conn, async |conn| {
        diesel::sql_query("INSERT INTO t VALUES (3)")
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(rows(&mut conn).await, 1);
}

/// Work given up half-way (a deadline) leaves a connection that the pool discards: it counts
/// as mid-transaction from before `BEGIN` was queued.
#[tokio::test]
async fn a_connection_given_up_mid_transaction_counts_as_broken() {
    let mut conn = connection().await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        pipelined(&mut conn, async |conn| {
            diesel::sql_query("SELECT pg_sleep(5)")
                .execute(conn)
                .await?;
            Ok(())
        }),
    )
    .await;
    assert!(abandoned.is_err(), "the deadline passed");
    assert!(broken(&mut conn));
}

/// A unit of work here is always one top-level transaction: nesting one (which diesel-async
/// would turn into a savepoint) is refused, and the outer one is rolled back cleanly.
#[tokio::test]
async fn a_transaction_inside_another_is_refused() {
    let mut conn = connection().await;
    let nested = pipelined(&mut conn, async |conn| {
        pipelined(conn, async |_| Ok(())).await
    })
    .await;
    assert!(nested.is_err());
    assert!(!broken(&mut conn));
}
