//! Outbound adapter, PostgreSQL: how database and pool failures become domain errors.
//!
//! Only failures a retry may cure become `Unavailable` (answered 503); everything else the
//! database reports is a bug or corruption, `Internal`, with diesel's error kept as the cause.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use diesel_async::pooled_connection::bb8::RunError;

use crate::domain::WorkflowError;

/// Failure inside a transaction: a database error, or a domain refusal that rolls it back.
#[derive(Debug)]
pub(super) enum TxError {
    Db(DieselError),
    Domain(WorkflowError),
}

impl TxError {
    /// Whether the connection failed (lost, or a message could not be sent), so that the
    /// database's answer, if it gave one, never arrived.
    pub(super) fn is_lost_connection(&self) -> bool {
        matches!(
            self,
            Self::Db(
                DieselError::DatabaseError(
                    DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                    _,
                ) | DieselError::BrokenTransactionManager
            )
        )
    }
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<WorkflowError> for TxError {
    fn from(e: WorkflowError) -> Self {
        Self::Domain(e)
    }
}

impl From<TxError> for WorkflowError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => db_error(e),
            TxError::Domain(e) => e,
        }
    }
}

pub(super) fn db_error(e: DieselError) -> WorkflowError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info)
        | DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info)
        | DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
            WorkflowError::Unavailable(info.message().to_owned())
        }
        DieselError::DatabaseError(_, info) if is_transient(info.message()) => {
            WorkflowError::Unavailable(info.message().to_owned())
        }
        DieselError::BrokenTransactionManager => {
            WorkflowError::Unavailable("connection lost mid-transaction".to_owned())
        }
        other => WorkflowError::internal_from("database error", other),
    }
}

/// Server errors that mean "try again later" rather than a bug: statement and lock time-outs,
/// cancellation, deadlocks, and a server shutting down or starting. diesel does not expose the
/// SQLSTATE of these, only the server's message, whose start is stable.
fn is_transient(message: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "canceling statement due to",
        "deadlock detected",
        "terminating connection",
        "the database system is",
        "could not serialize access",
    ];
    PREFIXES.iter().any(|p| message.starts_with(p))
}

pub(super) fn pool_error(e: RunError) -> WorkflowError {
    match e {
        RunError::TimedOut => {
            WorkflowError::Unavailable("timed out waiting for a connection".to_owned())
        }
        RunError::User(PoolError::ConnectionError(e)) => WorkflowError::Unavailable(e.to_string()),
        RunError::User(PoolError::QueryError(e)) => db_error(e),
    }
}

/// Whether `e` is a unique violation of the index named `index`.
pub(super) fn unique_violation_of(e: &TxError, index: &str) -> bool {
    matches!(e, TxError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
        if info.constraint_name() == Some(index))
}
