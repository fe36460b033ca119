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
mod delegations;
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
mod transaction;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};

use self::errors::{TxError, pool_error};
use crate::domain::WorkflowError;
use crate::domain::model::PoolUse;

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
    /// Work waiting for a pooled connection now (bb8 counts only what it has handed out).
    waiting: Arc<AtomicU32>,
}

impl PgStore {
    /// A pool on `database_url`. Connections are made lazily, so this succeeds while the
    /// database is down; requests then get `Unavailable` until it is back.
    pub async fn connect(database_url: &str, config: &PgConfig) -> Result<Self, WorkflowError> {
        Ok(Self {
            pool: connection::pool(database_url, config).await?,
            operation_timeout: config.operation_timeout,
            waiting: Arc::default(),
        })
    }

    /// A pooled connection, counted in `waiting` while it is awaited (also when the wait is
    /// abandoned: a dropped request must not stay counted).
    async fn connection(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, WorkflowError> {
        let _waiting = Waiting::start(&self.waiting);
        self.pool.get().await.map_err(pool_error)
    }

    /// The pool's use now.
    fn pool_use(&self) -> PoolUse {
        let state = self.pool.state();
        PoolUse {
            in_use: state.connections.saturating_sub(state.idle_connections),
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` on a pooled connection within the operation deadline: a unit of work that
    /// sends nothing that commits (a read, or a write whose one transaction is its own affair),
    /// so giving up on it is `Unavailable`.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, WorkflowError>
    where
        F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
    {
        self.with_write(async |conn, _| work(conn).await).await
    }
}

/// One unit of `PgStore::waiting`, given back when dropped.
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a unit of work has sent what may commit it (its `COMMIT`, or a statement that
/// commits by itself): from then on, a deadline that passes or a connection that is lost leaves
/// the outcome unknown. Before it, giving up drops the work with its connection (discarded by
/// the pool, since it is mid-transaction), so nothing can commit later.
#[derive(Default)]
pub(super) struct Sent(AtomicBool);

impl Sent {
    /// Marks that what follows may commit: call it right before sending it.
    pub(super) fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl PgStore {
    /// Runs a unit of work that writes, on a pooled connection, within the operation deadline,
    /// and tells the truth when it fails: `Unavailable` only while nothing that could commit has
    /// been sent (`work` calls [`Sent::mark`] right before that); after it, a deadline that
    /// passes or a lost connection is `OutcomeUnknown`. An error the database itself reports
    /// (the statement or the commit failed) is definite either way.
    async fn with_write<T, F>(&self, work: F) -> Result<T, WorkflowError>
    where
        F: for<'c, 's> AsyncFnOnce(&'c mut Conn, &'s Sent) -> Result<T, TxError>,
    {
        let sent = Sent::default();
        let run = async {
            let mut conn = self.connection().await?;
            work(&mut conn, &sent).await
        };
        match tokio::time::timeout(self.operation_timeout, run).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if sent.is_marked() && e.is_lost_connection() => {
                Err(WorkflowError::OutcomeUnknown(format!(
                    "connection lost after the commit was sent: {e:?}"
                )))
            }
            Ok(Err(e)) => Err(e.into()),
            // The work was dropped here, its connection with it.
            Err(_) if sent.is_marked() => Err(WorkflowError::OutcomeUnknown(
                "the operation timed out after the commit was sent".to_owned(),
            )),
            Err(_) => Err(WorkflowError::Unavailable(
                "operation timed out before anything could commit".to_owned(),
            )),
        }
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
