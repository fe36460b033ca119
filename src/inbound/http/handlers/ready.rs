//! Driving adapter, HTTP: `GET /readyz`, whether the service can do its work now (the store
//! answers, and each configured event broker does). `/healthz` stays the liveness check.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::finish;
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::errors::{ErrorBody, ErrorCode, ErrorDetail};
use crate::inbound::http::responses::json;

/// Each check's answer: `ok` or `unavailable`, by name (`database`, and `nats` when events are
/// published to NATS).
pub type Checks = BTreeMap<&'static str, &'static str>;

/// The answer of a ready service.
#[derive(Serialize, ToSchema)]
#[schema(as = Ready)]
pub struct ReadyDto {
    /// Always `ready`.
    pub status: &'static str,
    #[schema(value_type = BTreeMap<String, String>, example = json!({"database": "ok", "nats": "ok"}))]
    pub checks: Checks,
}

/// `GET /readyz`
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readiness",
    summary = "Whether the service can do its work now: its store and event brokers answer",
    responses(
        (status = 200, description = "Every check passed.", body = ReadyDto),
        (status = 503, description = "`unavailable`: a check failed; the message names it.", body = ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/readyz", status = tracing::field::Empty)
)]
pub async fn ready<S: WorkflowUseCases>(service: Arc<S>) -> Response {
    let readiness = service.readiness().await;
    let mut checks = Checks::new();
    let mut failed = Vec::new();
    for check in &readiness.checks {
        match &check.outcome {
            Ok(()) => {
                checks.insert(check.name, "ok");
            }
            Err(reason) => {
                // The reason may name hosts or hold a driver's words: the log only.
                tracing::warn!(check = check.name, %reason, "readiness check failed");
                checks.insert(check.name, "unavailable");
                failed.push(check.name);
            }
        }
    }
    let response = if failed.is_empty() {
        json(
            StatusCode::OK,
            &ReadyDto {
                status: "ready",
                checks,
            },
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            // The contract's error body: which checks failed is in the message, in words and
            // as `name: answer` pairs.
            &ErrorBody {
                error: ErrorDetail {
                    code: ErrorCode::Unavailable,
                    message: format!(
                        "The service is not ready: {} does not answer; retry later. Checks: {}.",
                        failed.join(", "),
                        checks
                            .iter()
                            .map(|(name, answer)| format!("{name}: {answer}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            },
        )
    };
    finish(Ok(response))
}
