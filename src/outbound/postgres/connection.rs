//! Outbound adapter, PostgreSQL: the connection pool, its settings and the session settings
//! every pooled connection starts with.

use std::time::Duration;

use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::domain::WorkflowError;

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

/// A pool on `database_url` that connects lazily.
pub(super) async fn pool(
    database_url: &str,
    config: &PgConfig,
) -> Result<Pool<AsyncPgConnection>, WorkflowError> {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.custom_setup = Box::new(|url| Box::pin(establish(url.to_owned())));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        database_url,
        manager_config,
    );
    Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(0))
        .connection_timeout(config.connect_timeout)
        // A broken connection is detected when a query fails on it and it is then dropped;
        // a ping on every checkout would add a round trip to every request.
        .test_on_check_out(false)
        .build(manager)
        .await
        .map_err(|e| WorkflowError::Unavailable(e.to_string()))
}
