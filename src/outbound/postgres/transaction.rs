//! Outbound adapter, PostgreSQL: a transaction whose `BEGIN` travels with its first reads.
//!
//! diesel-async's `transaction` waits for `BEGIN`'s answer before it sends anything else: one
//! whole round trip (a send, a wake-up of the backend, a wake-up of the task) that carries no
//! work. On the decision's path that is one of four. Here `BEGIN` is sent together with the
//! unit of work's first reads (queued right behind it, on the same connection), and both
//! answers are awaited before anything else is sent.
//!
//! The first reads must not write: if `BEGIN` failed, they ran outside any transaction, and the
//! unit of work stops there. The transaction is counted as open before `BEGIN` is queued, so a
//! connection given up from then on (a deadline, a panic) is discarded by the pool, never
//! handed out again in the middle of a transaction.

use diesel::connection::TransactionDepthChange;
use diesel::result::Error as DieselError;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};

use super::Conn;
use super::errors::TxError;

/// Runs `first` (reads only) together with `BEGIN`, then `work` on what they read, in one
/// transaction: commits when `work` succeeds, rolls back when anything fails (as
/// `AsyncConnection::transaction` does).
pub(super) async fn pipelined<R, T, F, W>(conn: &mut Conn, first: F, work: W) -> Result<T, TxError>
where
    F: for<'s> AsyncFnOnce(&'s AsyncPgConnection) -> Result<R, TxError>,
    W: for<'c> AsyncFnOnce(&'c mut Conn, R) -> Result<T, TxError>,
{
    count_open(conn)?;
    let read = {
        let shared: &AsyncPgConnection = conn;
        // Polled in order: `BEGIN` is queued before any of `first`'s statements (or their
        // prepares), and the client sends its requests in the order they are queued.
        let (begun, read) =
            futures_util::future::join((&mut &*shared).batch_execute("BEGIN"), first(shared)).await;
        begun.map_err(TxError::from).and(read)
    };
    let done = match read {
        Ok(read) => work(conn, read).await,
        Err(error) => Err(error),
    };
    match done {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        // After a failed `BEGIN` this `ROLLBACK` finds no transaction (a warning, not an
        // error), and the count is closed all the same.
        Err(error) => match AnsiTransactionManager::rollback_transaction(conn).await {
            // A transaction manager that gave up has marked the connection broken (the pool
            // discards it); the error that made the work fail says more.
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Counts the transaction as open in diesel-async's transaction manager, before `BEGIN` is
/// sent: from here on, the pool treats the connection as mid-transaction.
fn count_open(conn: &mut Conn) -> Result<(), DieselError> {
    let state = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_state()?;
    if state.transaction_depth().is_some() {
        return Err(DieselError::AlreadyInTransaction);
    }
    state.change_transaction_depth(TransactionDepthChange::IncreaseDepth)
}

#[cfg(test)]
mod tests;
