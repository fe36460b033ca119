//! Against the PostgreSQL server the other tests use (`TEST_DATABASE_URL`, else the local
//! one), on connections of their own and a temporary table, so nothing outlives the test. What
//! the server says about a session comes from a second connection (`pg_stat_activity`), not
//! from diesel-async's own count.

use std::cell::Cell;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::*;
use crate::domain::WorkflowError;

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn connect() -> Conn {
    AsyncPgConnection::establish(&admin_url())
        .await
        .expect("PostgreSQL must be reachable at TEST_DATABASE_URL (scripts/test.sh provides one)")
}

/// A connection with a temporary table `t`, and its backend's pid.
async fn connection() -> (Conn, i32) {
    let mut conn = connect().await;
    conn.batch_execute("CREATE TEMPORARY TABLE t (v int8)")
        .await
        .unwrap();
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        v: i32,
    }
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS v")
        .get_result::<Pid>(&mut conn)
        .await
        .unwrap()
        .v;
    (conn, pid)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    v: String,
}

async fn rows(conn: &mut Conn) -> i64 {
    diesel::sql_query("SELECT count(*) AS v FROM t")
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .v
}

/// The server's view of session `pid`: `idle`, `idle in transaction`, `active`...
async fn server_state(pid: i32) -> String {
    let mut other = connect().await;
    diesel::sql_query("SELECT state AS v FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Line>(&mut other)
        .await
        .unwrap()
        .v
}

/// Whether the pool would discard the connection (it asks what this asks).
fn broken(conn: &mut Conn) -> bool {
    AnsiTransactionManager::is_broken_transaction_manager(conn)
}

/// `now()`, which is the start of the current transaction.
async fn now(conn: &AsyncPgConnection) -> Result<String, TxError> {
    let now = diesel::sql_query("SELECT now()::text AS v")
        .get_result::<Line>(&mut &*conn)
        .await?;
    Ok(now.v)
}

async fn insert(conn: &mut Conn, v: i64) -> Result<(), TxError> {
    diesel::sql_query("INSERT INTO t VALUES ($1)")
        .bind::<BigInt, _>(v)
        .execute(conn)
        .await?;
    Ok(())
}

/// The first reads and the work run inside the one transaction `BEGIN` opened before them:
/// `now()` is its start, the same in every statement (in autocommit mode each statement is its
/// own transaction, with its own start).
#[tokio::test]
async fn the_first_reads_and_the_work_run_in_the_transaction_begun_with_them() {
    let (mut conn, _) = connection().await;
    let (first, last) = pipelined(
        &mut conn,
        async |shared| now(shared).await,
        async |conn, first| {
            diesel::sql_query("SELECT pg_sleep(0.02)")
                .execute(conn)
                .await?;
            Ok((first, now(conn).await?))
        },
    )
    .await
    .unwrap();
    assert_eq!(first, last, "all statements ran in one transaction");
}

#[tokio::test]
async fn work_that_succeeds_is_committed() {
    let (mut conn, pid) = connection().await;
    pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| insert(conn, 1).await,
    )
    .await
    .unwrap();
    assert_eq!(server_state(pid).await, "idle", "the transaction is over");
    assert_eq!(rows(&mut conn).await, 1);
    assert!(!broken(&mut conn));
}

/// A failure (the work's own, a statement's, or a first read's) rolls everything back, and the
/// connection is left outside any transaction, ready for the next one.
#[tokio::test]
async fn work_that_fails_is_rolled_back_and_the_connection_stays_usable() {
    let (mut conn, pid) = connection().await;
    let refused = pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| -> Result<(), TxError> {
            insert(conn, 1).await?;
            Err(WorkflowError::not_found("the thing").into())
        },
    )
    .await;
    assert!(refused.is_err());
    let failed = pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| -> Result<(), TxError> {
            insert(conn, 2).await?;
            diesel::sql_query("SELECT 1 / 0").execute(conn).await?;
            Ok(())
        },
    )
    .await;
    assert!(failed.is_err());
    let failed_read = pipelined(
        &mut conn,
        async |shared| -> Result<(), TxError> {
            diesel::sql_query("SELECT 1 / 0")
                .execute(&mut &*shared)
                .await?;
            Ok(())
        },
        async |conn, ()| insert(conn, 3).await,
    )
    .await;
    assert!(failed_read.is_err());
    assert_eq!(server_state(pid).await, "idle", "no transaction left open");
    assert_eq!(rows(&mut conn).await, 0, "all were rolled back");
    assert!(!broken(&mut conn));
    pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| insert(conn, 4).await,
    )
    .await
    .unwrap();
    assert_eq!(rows(&mut conn).await, 1);
}

/// A `BEGIN` the server refuses (here: the session is already in a failed transaction, which
/// the pool never hands out, but a cancel or an out-of-memory error answer the same way) stops
/// the unit of work before it sends anything that could write.
#[tokio::test]
async fn a_refused_begin_stops_the_work_before_it_writes() {
    let (mut conn, pid) = connection().await;
    conn.batch_execute("BEGIN").await.unwrap();
    assert!(
        conn.batch_execute("SELECT 1 / 0").await.is_err(),
        "the session's transaction has failed"
    );
    let ran = Cell::new(false);
    let refused = pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| {
            ran.set(true);
            insert(conn, 1).await
        },
    )
    .await;
    assert!(refused.is_err(), "BEGIN's error is the unit of work's");
    assert!(!ran.get(), "the work never ran");
    assert_eq!(server_state(pid).await, "idle", "rolled back");
    assert_eq!(rows(&mut conn).await, 0);
}

/// Work given up half-way (a deadline) leaves a connection that the pool discards: it counts
/// as mid-transaction from before `BEGIN` was queued, as the server sees it.
#[tokio::test]
async fn a_connection_given_up_mid_transaction_counts_as_broken() {
    let (mut conn, pid) = connection().await;
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        pipelined(
            &mut conn,
            async |_| Ok(()),
            async |conn, ()| {
                insert(conn, 1).await?;
                diesel::sql_query("SELECT pg_sleep(5)")
                    .execute(conn)
                    .await?;
                Ok(())
            },
        ),
    )
    .await;
    assert!(abandoned.is_err(), "the deadline passed");
    assert_eq!(server_state(pid).await, "active", "mid-transaction, asleep");
    assert!(broken(&mut conn));
}

/// A unit of work here is always one top-level transaction: nesting one (which diesel-async
/// would turn into a savepoint) is refused, and the outer one is rolled back cleanly.
#[tokio::test]
async fn a_transaction_inside_another_is_refused() {
    let (mut conn, pid) = connection().await;
    let nested = pipelined(
        &mut conn,
        async |_| Ok(()),
        async |conn, ()| pipelined(conn, async |_| Ok(()), async |_, ()| Ok(())).await,
    )
    .await;
    assert!(
        matches!(nested, Err(TxError::Db(DieselError::AlreadyInTransaction))),
        "refused as nested"
    );
    assert_eq!(server_state(pid).await, "idle");
    assert!(!broken(&mut conn));
}
