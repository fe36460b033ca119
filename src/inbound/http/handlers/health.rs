//! Driving adapter, HTTP: `GET /healthz`, whether the store answers.

use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::finish;
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::responses::{HealthDto, json};

/// `GET /healthz`
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "health",
    summary = "Whether the service and its store answer",
    responses(
        (status = 200, description = "The store answers.", body = crate::inbound::http::responses::HealthDto),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/healthz", status = tracing::field::Empty)
)]
pub async fn health<S: WorkflowUseCases>(service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        service.health().await?;
        Ok(json(StatusCode::OK, &HealthDto { status: "ok" }))
    }
    .await;
    finish(result)
}
