//! The PostgreSQL adapter for `WorkflowRepository` and `RoleResolver`: diesel-async on a bb8
//! pool, schema from the embedded migrations.
//!
//! Each use case is one transaction. A decision locks its instance row, then the instance's step
//! rows, with `SELECT .. FOR UPDATE` (always in that order, so concurrent decisions queue instead
//! of deadlocking) and re-runs the state machine on what it read under the lock. Database
//! failures become domain errors here: the one-active-instance unique violation becomes
//! `InstanceAlreadyActive`; a lost connection, a pool time-out or a statement that outlives
//! the operation deadline becomes `Unavailable`.

mod repository;
mod roles;
mod rows;
pub mod schema;
mod seed;
mod statement;

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::{Pool, RunError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::domain::WorkflowError;

/// The schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

const ONE_ACTIVE_INSTANCE_INDEX: &str = "workflow_instances_one_active";
const ONE_ACTIVE_TEMPLATE_INDEX: &str = "workflow_templates_one_active_per_event";
const ACTIVE: [&str; 2] = ["pending", "in_progress"];

/// Pool and time-out settings.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Most connections held at once.
    pub pool_size: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub connect_timeout: Duration,
    /// How long one operation (including lock waits) may take before it is answered 503.
    pub operation_timeout: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// Failure inside a transaction: a database error, or a domain refusal that rolls it back.
#[derive(Debug)]
enum TxError {
    Db(DieselError),
    Domain(WorkflowError),
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

fn db_error(e: DieselError) -> WorkflowError {
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
        other => WorkflowError::Internal(other.to_string()),
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

fn pool_error(e: RunError) -> WorkflowError {
    match e {
        RunError::TimedOut => {
            WorkflowError::Unavailable("timed out waiting for a connection".to_owned())
        }
        RunError::User(PoolError::ConnectionError(e)) => WorkflowError::Unavailable(e.to_string()),
        RunError::User(PoolError::QueryError(e)) => db_error(e),
    }
}

fn unique_violation_of(e: &TxError, index: &str) -> bool {
    matches!(e, TxError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
        if info.constraint_name() == Some(index))
}

/// Applies pending migrations; returns the versions applied. Runs on a blocking thread because
/// diesel's migration harness is synchronous.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, WorkflowError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        type Wrapper =
            diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
        let mut conn = <Wrapper as diesel::Connection>::establish(&url).map_err(|e| {
            WorkflowError::Unavailable(format!("can't connect to the database: {e}"))
        })?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| WorkflowError::Internal(format!("migration failed: {e}")))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| WorkflowError::Internal(format!("migration task failed: {e}")))?
}

/// Session settings of every pooled connection.
///
/// Every statement the adapter sends is prepared once per connection and reads rows by key or
/// by a short index range, so the generic plan is always the right one: PostgreSQL's default
/// re-planned the decision's write statement on every execution (its array parameters make each
/// custom plan look cheaper than the generic one), which cost more CPU than running it. No
/// parallel workers: they only add start-up latency to queries this small.
///
/// The statement timeout makes the server give up on work (lock waits included) soon after the
/// service has stopped waiting for it (`PgConfig::operation_timeout`, 30 s), so a request that
/// was answered 503 can't commit later, and a connection is never handed out again while the
/// server is still busy with an abandoned statement.
pub const SESSION_SETTINGS: &str = "SET plan_cache_mode = force_generic_plan; \
     SET max_parallel_workers_per_gather = 0; SET statement_timeout = '25s'";

/// Opens one pooled connection and applies [`SESSION_SETTINGS`].
async fn establish(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute(SESSION_SETTINGS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    operation_timeout: Duration,
}

type Conn = AsyncPgConnection;

impl PgStore {
    /// A pool on `database_url`. Connections are made lazily, so this succeeds while the
    /// database is down; requests then get `Unavailable` until it is back.
    pub async fn connect(database_url: &str, config: &PgConfig) -> Result<Self, WorkflowError> {
        let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
        manager_config.custom_setup = Box::new(|url| Box::pin(establish(url.to_owned())));
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            database_url,
            manager_config,
        );
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            .connection_timeout(config.connect_timeout)
            // A broken connection is detected when a query fails on it and it is then dropped;
            // a ping on every checkout would add a round trip to every request.
            .test_on_check_out(false)
            .build(manager)
            .await
            .map_err(|e| WorkflowError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
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
