//! Route handlers: parse, call the service, render. Domain errors are answered here through the
//! single mapping in `errors`; nothing else happens in a handler.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::{self, InstanceDto, PendingStepDto, TemplateDto};
use super::errors::ApiError;
use crate::domain::WorkflowService;
use crate::domain::model::{InstanceId, StepId, TemplateId, UserId};
use crate::domain::ports::{Clock, RoleResolver, WorkflowRepository};

type Svc<R, U, C> = Arc<WorkflowService<R, U, C>>;

/// Default inbox page size.
const DEFAULT_PENDING_LIMIT: u32 = 50;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Renders `result` as the DTO `D`, or as the error body.
fn respond<T, D>(
    status: StatusCode,
    result: Result<T, crate::domain::WorkflowError>,
) -> Result<Response, Infallible>
where
    D: for<'a> From<&'a T> + Serialize,
{
    Ok(match result {
        Ok(value) => json(status, &D::from(&value)),
        Err(error) => ApiError::from(error).into_response(),
    })
}

/// A path id: a positive integer, else the resource does not exist.
fn path_id<T>(
    raw: &str,
    what: &str,
    make: fn(i64) -> Result<T, crate::domain::WorkflowError>,
) -> Result<T, ApiError> {
    // Canonical decimal only: "+1" and "01" name no resource, as "1" does.
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

macro_rules! try_api {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(error) => return Ok(ApiError::from(error).into_response()),
        }
    };
}

/// `POST /api/v1/workflow/instances`
pub async fn trigger<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    svc: Svc<R, U, C>,
    body: Map<String, Value>,
) -> Result<Response, Infallible> {
    let request = try_api!(dto::trigger_request(body));
    respond::<_, InstanceDto>(StatusCode::CREATED, svc.trigger(request).await)
}

/// `GET /api/v1/workflow/instances/{id}`
pub async fn instance<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    svc: Svc<R, U, C>,
) -> Result<Response, Infallible> {
    let id = try_api!(path_id(&raw_id, "instance", InstanceId::new));
    respond::<_, InstanceDto>(StatusCode::OK, svc.instance(id).await)
}

/// `GET /api/v1/workflow/templates/{id}`
pub async fn template<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    svc: Svc<R, U, C>,
) -> Result<Response, Infallible> {
    let id = try_api!(path_id(&raw_id, "template", TemplateId::new));
    respond::<_, TemplateDto>(StatusCode::OK, svc.template(id).await)
}

/// `PUT /api/v1/workflow/templates/{id}`
pub async fn update_template<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    svc: Svc<R, U, C>,
    body: Map<String, Value>,
) -> Result<Response, Infallible> {
    let id = try_api!(path_id(&raw_id, "template", TemplateId::new));
    let update = try_api!(dto::template_update(body));
    respond::<_, TemplateDto>(StatusCode::OK, svc.update_template(id, update).await)
}

/// `GET /api/v1/workflow/steps/pending?user_id=N&limit=M`
pub async fn pending_steps<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    svc: Svc<R, U, C>,
    query: Vec<(String, String)>,
) -> Result<Response, Infallible> {
    let mut user = None;
    let mut limit = DEFAULT_PENDING_LIMIT;
    for (key, value) in &query {
        match key.as_str() {
            "user_id" => {
                user = Some(try_api!(
                    value
                        .parse::<i64>()
                        .ok()
                        .and_then(|n| UserId::new(n).ok())
                        .ok_or_else(|| ApiError::validation(
                            "user_id",
                            "must be a positive integer"
                        ))
                ));
            }
            "limit" => {
                // The range is the service's rule; only the syntax is checked here.
                limit = try_api!(value.parse::<u32>().map_err(|_| ApiError::validation(
                    "limit",
                    &format!(
                        "must be an integer between 1 and {}",
                        crate::domain::service::MAX_PENDING_LIMIT
                    )
                )));
            }
            other => {
                return Ok(ApiError::validation(
                    other,
                    "is not a known query parameter (expected: user_id, limit)",
                )
                .into_response());
            }
        }
    }
    let user = try_api!(user.ok_or_else(|| ApiError::validation("user_id", "is required")));
    let items = try_api!(svc.pending_steps(user, limit).await);
    let items: Vec<_> = items.iter().map(PendingStepDto::from).collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "items": items })))
}

async fn decide<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    approve: bool,
    svc: Svc<R, U, C>,
    body: Map<String, Value>,
) -> Result<Response, Infallible> {
    let step = try_api!(path_id(&raw_id, "step", StepId::new));
    let request = try_api!(dto::decision_request(step, approve, body));
    respond::<_, InstanceDto>(StatusCode::OK, svc.decide(request).await)
}

/// `POST /api/v1/workflow/steps/{id}/approve`
pub async fn approve<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    svc: Svc<R, U, C>,
    body: Map<String, Value>,
) -> Result<Response, Infallible> {
    decide(raw_id, true, svc, body).await
}

/// `POST /api/v1/workflow/steps/{id}/reject`
pub async fn reject<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    raw_id: String,
    svc: Svc<R, U, C>,
    body: Map<String, Value>,
) -> Result<Response, Infallible> {
    decide(raw_id, false, svc, body).await
}

/// `GET /healthz`
pub async fn health<R: WorkflowRepository, U: RoleResolver, C: Clock>(
    svc: Svc<R, U, C>,
) -> Result<Response, Infallible> {
    try_api!(svc.health().await);
    Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"})))
}
