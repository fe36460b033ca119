//! Outbound adapter, PostgreSQL: a transaction whose `BEGIN` travels with its first statements.
//!
//! diesel-async's `transaction` waits for `BEGIN`'s answer before it sends anything else: one
//! whole round trip (a send, a wake-up of the backend, a wake-up of the task) that carries no
//! work. On the decision's path that is one of four. Here `BEGIN` is queued on the connection
//! and the unit of work's first statements are queued right behind it, so they leave in the
//! same write and the server answers them together.
//!
//! `BEGIN`'s own answer is not awaited. It cannot fail on a connection the pool hands out (idle,
//! outside any transaction) except by the connection failing, and then the statements behind it
//! fail too. The transaction is counted as open before `BEGIN` is queued, so a connection
//! dropped from then on (a time-out, a panic) is discarded by the pool, never handed out again
//! in the middle of a transaction.

use diesel::connection::TransactionDepthChange;
use diesel::result::Error as DieselError;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use futures_util::FutureExt;

use super::Conn;
use super::errors::TxError;

/// Runs `work` in a transaction that `BEGIN`s with `work`'s first statements: commits when it
/// succeeds, rolls back when it fails (as `AsyncConnection::transaction` does).
pub(super) async fn pipelined<T, F>(conn: &mut Conn, work: F) -> Result<T, TxError>
where
    F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
{
    begin_unanswered(conn)?;
    match work(conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(conn).await {
            // A transaction manager that gave up has marked the connection broken (the pool
            // discards it); the error that made the work fail says more.
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Counts the transaction as open, then queues `BEGIN` without waiting for its answer.
fn begin_unanswered(conn: &mut Conn) -> Result<(), DieselError> {
    let state = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_state()?;
    if state.transaction_depth().is_some() {
        return Err(DieselError::AlreadyInTransaction);
    }
    state.change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
    let shared: &AsyncPgConnection = conn;
    // Polled once: that queues `BEGIN` on the connection (the client sends its requests in the
    // order they are queued) and finds it unanswered; dropping the future only drops the wait.
    // An error already known (a closed connection) is returned.
    match (&mut &*shared).batch_execute("BEGIN").now_or_never() {
        Some(Err(error)) => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
