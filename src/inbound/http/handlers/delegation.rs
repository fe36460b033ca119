//! Driving adapter, HTTP: a user's delegation. `PUT /api/v1/workflow/users/{id}/delegation`
//! lets another user act for the user until a time, `DELETE` ends it early; with the body type
//! and the wire format of a delegation (also part of `GET /users/{id}`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::{Delegation, UserId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::requests::{CommentText, Timestamp, parse};
use crate::inbound::http::responses::{json, time};
use crate::inbound::http::schemas::UserIdField;

/// The body of `PUT /users/{id}/delegation`: the delegate, until when (RFC 3339, in the future)
/// and, optionally, why (a comment's rules).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DelegationRequest)]
pub struct DelegationBody {
    to_user_id: UserIdField,
    until: Timestamp,
    reason: Option<CommentText>,
}

/// A delegation as the API sends it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Delegation)]
pub struct DelegationDto {
    /// The delegator.
    user_id: i64,
    /// The delegate, who may act on the delegator's steps while it runs.
    to_user_id: i64,
    /// When it ends (exclusive).
    #[schema(format = DateTime)]
    until: String,
    reason: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&Delegation> for DelegationDto {
    fn from(d: &Delegation) -> Self {
        Self {
            user_id: d.user_id.get(),
            to_user_id: d.to_user_id.get(),
            until: time(d.until),
            reason: d.reason.as_ref().map(|r| r.as_str().to_owned()),
            created_at: time(d.created_at),
        }
    }
}

/// `PUT /api/v1/workflow/users/{id}/delegation`
#[utoipa::path(
    put,
    path = "/api/v1/workflow/users/{id}/delegation",
    tag = "users",
    operation_id = "put_delegation",
    summary = "Let another user act for this one until a time",
    description = "Replaces the user's delegation, if any. While it runs (until `until`), the \
                   delegate may approve or reject the steps where the user is eligible, and sees \
                   them in its inbox with `on_behalf_of`. Not transitive.",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The delegator's id."),
    ),
    request_body(content = DelegationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The delegation, as stored.", body = DelegationDto),
        (status = 404, description = "`not_found`: no such user.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`delegation_cycle`: the delegate already delegates to this user, and that delegation runs.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed` (`until` not in the future, a delegate who is the user or inactive, a malformed field) or `unknown_user` (`to_user_id`).", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "PUT", route = "/api/v1/workflow/users/{id}/delegation", status = tracing::field::Empty)
)]
pub async fn put_delegation<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "user", UserId::new)?;
        let body = parse::<DelegationBody>(body, "")?;
        let delegation = service
            .put_delegation(
                id,
                body.to_user_id.0,
                body.until.0,
                body.reason.map(|r| r.0),
            )
            .await?;
        Ok(json(StatusCode::OK, &DelegationDto::from(&delegation)))
    }
    .await;
    finish(result)
}

/// `DELETE /api/v1/workflow/users/{id}/delegation`
#[utoipa::path(
    delete,
    path = "/api/v1/workflow/users/{id}/delegation",
    tag = "users",
    operation_id = "end_delegation",
    summary = "End the user's running delegation now",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The delegator's id."),
    ),
    responses(
        (status = 204, description = "Ended: the delegate may no longer act for the user."),
        (status = 404, description = "`not_found`: no such user, or no delegation of it runs.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "DELETE", route = "/api/v1/workflow/users/{id}/delegation", status = tracing::field::Empty)
)]
pub async fn end_delegation<S: WorkflowUseCases>(raw_id: String, service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "user", UserId::new)?;
        service.end_delegation(id).await?;
        Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(value: Value) -> Result<DelegationBody, String> {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        parse::<DelegationBody>(map, "").map_err(|e| e.message)
    }

    #[test]
    fn a_body_names_the_delegate_and_the_end_kept_to_the_microsecond() {
        let parsed = body(json!({
            "to_user_id": 3,
            "until": "2026-12-01T01:00:00.1234567+01:00",
            "reason": "Holiday"
        }))
        .unwrap();
        assert_eq!(parsed.to_user_id.0.get(), 3);
        assert_eq!(
            time(parsed.until.0),
            "2026-12-01T00:00:00.123456Z",
            "UTC, to the microsecond"
        );
        assert_eq!(parsed.reason.unwrap().0.as_str(), "Holiday");
    }

    #[test]
    fn bad_bodies_are_refused_naming_the_field() {
        for (value, message) in [
            (
                json!({"until": "2026-12-01T00:00:00Z"}),
                "Field 'to_user_id' is required.",
            ),
            (
                json!({"to_user_id": "3", "until": "2026-12-01T00:00:00Z"}),
                "Field 'to_user_id' must be a positive integer.",
            ),
            (json!({"to_user_id": 3}), "Field 'until' is required."),
            (
                json!({"to_user_id": 3, "until": "tomorrow"}),
                "Field 'until' must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z.",
            ),
            (
                json!({"to_user_id": 3, "until": 1_764_547_200}),
                "Field 'until' must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z.",
            ),
            (
                json!({"to_user_id": 3, "until": "2026-12-01T00:00:00Z", "reason": " "}),
                "Field 'reason' must not be blank.",
            ),
        ] {
            assert_eq!(body(value.clone()).unwrap_err(), message, "{value}");
        }
        assert!(
            body(json!({"to_user_id": 3, "until": "2026-12-01T00:00:00Z", "why": "x"}))
                .unwrap_err()
                .starts_with("Field 'why' is not a known field"),
        );
    }
}
