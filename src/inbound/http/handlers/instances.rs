//! Driving adapter, HTTP: `GET /api/v1/workflow/instances/{id}`, reading an instance.

use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::InstanceId;
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::responses::{InstanceDto, json};

/// `GET /api/v1/workflow/instances/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/instances/{id}",
    tag = "instances",
    operation_id = "get_instance",
    summary = "Read an instance with its steps and audit trail",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The instance's id."),
    ),
    responses(
        (status = 200, description = "The instance, one snapshot.", body = crate::inbound::http::responses::InstanceDto),
        (status = 404, description = "`not_found`: no such instance.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/instances/{id}", status = tracing::field::Empty)
)]
pub async fn instance<S: WorkflowUseCases>(raw_id: String, service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "instance", InstanceId::new)?;
        let instance = service.instance(id).await?;
        Ok(json(StatusCode::OK, &InstanceDto::from(&instance)))
    }
    .await;
    finish(result)
}
