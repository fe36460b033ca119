//! Outbound adapter, PostgreSQL: the schema, embedded in the binary, and applying it.

use std::error::Error;
use std::fmt;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Text};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::domain::WorkflowError;

/// The schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A blocking connection for diesel's synchronous migration harness.
type Wrapper = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies pending migrations; returns the versions applied. Runs on a blocking thread because
/// diesel's migration harness is synchronous.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, WorkflowError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <Wrapper as diesel::Connection>::establish(&url).map_err(|e| {
            WorkflowError::Unavailable(format!("can't connect to the database: {e}"))
        })?;
        // Looked at first with a plain read: the harness would begin by creating its table
        // if missing, which the service's least-privilege role may not do even when the table
        // exists and nothing is pending.
        if !has_pending(&mut conn)? {
            return Ok(Vec::new());
        }
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| WorkflowError::internal_from("migration failed", MigrationError(e)))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| WorkflowError::internal_from("migration task failed", e))?
}

/// Whether an embedded migration is not recorded as applied (all are, to a fresh database).
fn has_pending(conn: &mut Wrapper) -> Result<bool, WorkflowError> {
    #[derive(QueryableByName)]
    struct Present {
        #[diesel(sql_type = Bool)]
        present: bool,
    }
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let read_failed = |e| WorkflowError::internal_from("reading the applied migrations failed", e);
    let table: Present = diesel::sql_query(
        "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS present",
    )
    .get_result(conn)
    .map_err(read_failed)?;
    let applied: Vec<Applied> = if table.present {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(conn)
            .map_err(read_failed)?
    } else {
        Vec::new()
    };
    let embedded = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(|e| {
        WorkflowError::internal_from("reading the embedded migrations failed", MigrationError(e))
    })?;
    Ok(embedded.iter().any(|m| {
        let version = m.name().version().to_string();
        !applied.iter().any(|a| a.version == version)
    }))
}

/// A failed migration. The harness reports it boxed, and a boxed error is not an `Error`
/// itself, so it can't be kept as a cause without this wrapper.
#[derive(Debug)]
struct MigrationError(Box<dyn Error + Send + Sync>);

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for MigrationError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}
