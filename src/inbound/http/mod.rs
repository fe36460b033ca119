//! Driving adapter (inbound side of the hexagon): the HTTP API, with warp. Routes under
//! `/api/v1/workflow` plus `/healthz`; it calls the core only through the driving port
//! [`WorkflowUseCases`](crate::domain::ports::WorkflowUseCases).
//!
//! `filters` matches paths and methods and injects the service, one function per route;
//! `body` reads JSON bodies (415, 413, 400, and 422 for a key repeated in an object, which
//! `unique_keys` finds); `requests` holds the field types that request bodies are made of;
//! each module of `handlers` holds a group of routes with its request types; `responses` holds
//! the wire formats of answers; `errors` maps every failure to a status and error body.

mod body;
pub mod errors;
mod filters;
mod handlers;
mod idempotency;
pub mod metrics;
mod requests;
mod responses;
mod unique_keys;

use std::future::Future;

use tokio::net::TcpListener;
use warp::{Filter, Reply};

pub use filters::{api, routes};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Serves `routes` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

#[cfg(test)]
mod tests;
