//! Outbound adapter, PostgreSQL: the schema, embedded in the binary, and applying it.

use std::error::Error;
use std::fmt;

use diesel_async::AsyncPgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::domain::WorkflowError;

/// The schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

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
            .map_err(|e| WorkflowError::internal_from("migration failed", MigrationError(e)))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| WorkflowError::internal_from("migration task failed", e))?
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
