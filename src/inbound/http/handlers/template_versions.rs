//! Driving adapter, HTTP: template versions. `POST /api/v1/workflow/templates/{id}/versions`
//! publishes a template's next version (the body is `PUT`'s), and
//! `GET /api/v1/workflow/templates/{id}/versions/{version}` reads any version as it was.

use std::sync::Arc;

use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::templates::TemplateUpdateBody;
use super::{finish, path_id};
use crate::domain::WorkflowError;
use crate::domain::model::{Template, TemplateId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::requests::parse;
use crate::inbound::http::responses::{TemplateDto, json};

/// A version number in a path: a positive 32-bit integer, else no such version exists.
fn version_number(raw: i64) -> Result<i32, WorkflowError> {
    i32::try_from(raw)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| WorkflowError::validation("version", "must be a positive integer"))
}

/// `POST /api/v1/workflow/templates/{id}/versions`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/templates/{id}/versions",
    tag = "templates",
    operation_id = "publish_version",
    summary = "Publish the next version of a template, even while instances run on it",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The template's id."),
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = crate::inbound::http::handlers::templates::TemplateUpdateBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The template at its new version.", body = crate::inbound::http::responses::TemplateDto),
        (status = 404, description = "`not_found`: no such template.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`template_conflict`.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/templates/{id}/versions", status = tracing::field::Empty)
)]
pub async fn publish_version<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "template", TemplateId::new)?;
        let answer = render(StatusCode::CREATED, |t: &Template| TemplateDto::from(t));
        let path = format!("/api/v1/workflow/templates/{id}/versions");
        let once = once(&key, &Method::POST, &path, &body, answer)?;
        let update = parse::<TemplateUpdateBody>(body, "")?.try_into_domain()?;
        let done = service.publish_version(id, update, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/templates/{id}/versions/{version}`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/templates/{id}/versions/{version}",
    tag = "templates",
    operation_id = "get_template_version",
    summary = "Read one version of a template, as it was",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The template's id."),
        ("version" = crate::inbound::http::schemas::PathId, Path, description = "The version number."),
    ),
    responses(
        (status = 200, description = "The template as it was at that version.", body = crate::inbound::http::responses::TemplateDto),
        (status = 404, description = "`not_found`: no such template or version.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/templates/{id}/versions/{version}", status = tracing::field::Empty)
)]
pub async fn template_version<S: WorkflowUseCases>(
    raw_id: String,
    raw_version: String,
    service: Arc<S>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "template", TemplateId::new)?;
        let version = path_id(&raw_version, "template version", version_number)?;
        let template = service.template_version(id, version).await?;
        Ok(json(StatusCode::OK, &TemplateDto::from(&template)))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_positive_32_bit_integers() {
        assert_eq!(version_number(1), Ok(1));
        assert_eq!(version_number(i64::from(i32::MAX)), Ok(i32::MAX));
        for raw in [0, -1, i64::from(i32::MAX) + 1] {
            assert!(version_number(raw).is_err(), "{raw}");
        }
    }
}
