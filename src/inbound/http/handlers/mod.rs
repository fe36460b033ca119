//! Driving adapter, HTTP handlers: one module per group of routes, each with its request types.
//! A handler parses its input into a domain request, calls the driving port, and renders the
//! result; every handler runs in a `request` span (method, route template, status) so that each
//! log line says which route it belongs to.

pub mod audit;
pub mod cancel;
pub mod decide;
pub mod delegation;
pub mod health;
pub mod inbox;
pub mod instances;
pub mod metrics;
pub mod openapi;
pub mod ready;
pub mod search;
pub mod template_authoring;
pub mod template_versions;
pub mod templates;
pub mod trigger;
pub mod users;
pub mod webhooks;

use warp::reply::Response;

use super::errors::ApiError;
use crate::domain::WorkflowError;

/// The handler's answer (its error as the error body), with the status recorded on the span.
fn finish(result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(ApiError::into_response);
    tracing::Span::current().record("status", response.status().as_u16());
    response
}

/// A path id: a positive integer in canonical decimal, else the resource does not exist.
fn path_id<T>(
    raw: &str,
    what: &str,
    make: fn(i64) -> Result<T, WorkflowError>,
) -> Result<T, ApiError> {
    // "+1" and "01" name no resource, as "1" does.
    let canonical =
        !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0');
    canonical
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .and_then(|n| make(n).ok())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "No {what} has id '{raw}'; ids are positive integers."
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::StepId;

    #[test]
    fn path_ids_are_canonical_positive_decimals() {
        assert_eq!(path_id("12", "step", StepId::new).unwrap().get(), 12);
        for raw in ["", "0", "01", "+1", "-1", "1.5", "x", "9223372036854775808"] {
            let error = path_id(raw, "step", StepId::new).unwrap_err();
            assert_eq!(
                error.message,
                format!("No step has id '{raw}'; ids are positive integers.")
            );
        }
    }
}
