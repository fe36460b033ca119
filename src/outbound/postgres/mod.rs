//! Outbound adapter (driven side of the hexagon): the PostgreSQL implementation of the
//! `WorkflowRepository` and `RoleResolver` ports, on diesel-async over a bb8 pool, with the
//! schema from the embedded migrations.
//!
//! One file per aggregate: `templates` (with `template_versions`, every version kept),
//! `instances` (trigger write and reads), `decisions`, `inbox`, `outbox` and `directory` (users
//! and roles); `repository` only routes the port's methods to them. `property` loads the
//! platform's reference records, which no port knows.
//!
//! Each use case is one transaction. A decision locks its instance row, then the instance's step
//! rows, with `SELECT .. FOR UPDATE` (always in that order, so concurrent decisions queue instead
//! of deadlocking) and runs the domain's decision on what it read under the lock. Database
//! failures become domain errors here (`errors`): the one-active-instance unique violation
//! becomes `InstanceAlreadyActive`; a lost connection, a pool time-out or a statement that
//! outlives the operation deadline becomes `Unavailable`.

mod connection;
mod decisions;
mod directory;
mod errors;
mod idempotency;
mod inbox;
mod instances;
mod migrations;
mod outbox;
mod property;
mod repository;
mod rows;
pub mod schema;
mod search;
mod statement;
mod template_versions;
mod templates;

use std::future::Future;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::Pool;

use self::errors::{TxError, pool_error};
use crate::domain::WorkflowError;

pub use self::connection::{PgConfig, SESSION_SETTINGS};
pub use self::migrations::{MIGRATIONS, run_migrations};
pub use self::property::{Booking, Commission, Project, PropertyRecords, Unit};

/// The statuses of an active instance, as stored.
const ACTIVE: [&str; 2] = ["pending", "in_progress"];

type Conn = AsyncPgConnection;

/// The PostgreSQL store. Cloning it is cheap and shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    operation_timeout: Duration,
}

impl PgStore {
    /// A pool on `database_url`. Connections are made lazily, so this succeeds while the
    /// database is down; requests then get `Unavailable` until it is back.
    pub async fn connect(database_url: &str, config: &PgConfig) -> Result<Self, WorkflowError> {
        Ok(Self {
            pool: connection::pool(database_url, config).await?,
            operation_timeout: config.operation_timeout,
        })
    }

    /// Runs `work` on a pooled connection within the operation deadline.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, WorkflowError>
    where
        F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
    {
        let run = async {
            let mut conn = self.pool.get().await.map_err(pool_error)?;
            work(&mut conn).await.map_err(WorkflowError::from)
        };
        tokio::time::timeout(self.operation_timeout, run)
            .await
            .unwrap_or_else(|_| Err(WorkflowError::Unavailable("operation timed out".to_owned())))
    }
}

/// Runs a unit of work that writes on a task of its own and waits for it.
///
/// The caller's future is dropped when an HTTP client hangs up; a transaction dropped half-way
/// would leave its connection mid-transaction and the client without an answer to retry on. On
/// its own task the work runs to its commit or rollback whoever still waits for it. `what` names
/// the work in the error a failed task (a panic) becomes.
async fn detached<T, W>(what: &'static str, work: W) -> Result<T, WorkflowError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, WorkflowError>> + Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| WorkflowError::internal_from(format!("{what} task failed"), e))?
}
