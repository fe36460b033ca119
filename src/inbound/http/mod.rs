//! Driving adapter (inbound side of the hexagon): the HTTP API, with warp. Routes under
//! `/api/v1/workflow` plus `/healthz` and `/readyz`; it calls the core only through the driving port
//! [`WorkflowUseCases`](crate::domain::ports::WorkflowUseCases).
//!
//! `filters` matches paths and methods and injects the service, one function per route;
//! `body` reads JSON bodies (415, 413, 400, and 422 for a key repeated in an object, which
//! `unique_keys` finds); `requests` holds the field types that request bodies are made of;
//! each module of `handlers` holds a group of routes with its request types; `responses` holds
//! the wire formats of answers; `errors` maps every failure to a status and error body;
//! `server` accepts and serves connections, with the time-outs and the cap that `connections`
//! keeps the books for; `openapi` generates the OpenAPI document from the handlers' and wire
//! types' annotations (`schemas` documents the request field types).

mod body;
mod connections;
mod cursor;
pub mod errors;
mod filters;
mod handlers;
mod idempotency;
pub mod metrics;
pub mod openapi;
mod request_id;
mod requests;
mod responses;
mod schemas;
mod server;
mod unique_keys;

pub use filters::{api, api_with_webhooks, routes, with_shared};
pub use handlers::inbox::{
    decode_cursor as decode_inbox_cursor, encode_cursor as encode_inbox_cursor,
};
pub use request_id::REQUEST_ID;
pub use server::{ConnectionLimits, serve};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests;
