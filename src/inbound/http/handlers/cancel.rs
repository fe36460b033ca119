//! Driving adapter, HTTP: `POST /api/v1/workflow/instances/{id}/cancel`, the initiator
//! withdrawing an active instance.

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::{CancelRequest, Instance, InstanceId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::requests::{CommentText, parse};
use crate::inbound::http::responses::InstanceDto;
use crate::inbound::http::schemas::UserIdField;

/// The cancel body: the reason is optional and follows the rules of a comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CancelRequest)]
pub struct CancelBody {
    acted_by_user_id: UserIdField,
    reason: Option<CommentText>,
}

impl CancelBody {
    /// The domain request for `instance`.
    pub fn try_into_domain(self, instance: InstanceId) -> Result<CancelRequest, ApiError> {
        Ok(CancelRequest {
            instance_id: instance,
            acted_by: self.acted_by_user_id.0,
            reason: self.reason.map(|r| r.0),
        })
    }
}

/// `POST /api/v1/workflow/instances/{id}/cancel`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/instances/{id}/cancel",
    tag = "instances",
    operation_id = "cancel_instance",
    summary = "Withdraw an active instance (its initiator only)",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The instance's id."),
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = CancelBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The cancelled instance.", body = crate::inbound::http::responses::InstanceDto),
        (status = 403, description = "`not_the_initiator` or `user_inactive`.", body = crate::inbound::http::errors::ErrorBody),
        (status = 404, description = "`not_found`: no such instance.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`instance_not_active`: the instance has ended.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`, `unknown_user` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/instances/{id}/cancel", status = tracing::field::Empty)
)]
pub async fn cancel<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "instance", InstanceId::new)?;
        let answer = render(StatusCode::OK, |i: &Instance| InstanceDto::from(i));
        let path = format!("/api/v1/workflow/instances/{id}/cancel");
        let once = once(&key, &Method::POST, &path, &body, answer)?;
        let request = parse::<CancelBody>(body, "")?.try_into_domain(id)?;
        let done = service.cancel(request, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::model::{Comment, UserId};

    fn cancel(body: Value) -> Result<CancelRequest, String> {
        let Value::Object(object) = body else {
            panic!("not an object: {body}");
        };
        parse::<CancelBody>(object, "")
            .and_then(|b| b.try_into_domain(InstanceId::new(7).unwrap()))
            .map_err(|e| e.message)
    }

    #[test]
    fn bodies_are_domain_cancellations() {
        let request = cancel(json!({"acted_by_user_id": 3})).unwrap();
        assert_eq!(
            request,
            CancelRequest {
                instance_id: InstanceId::new(7).unwrap(),
                acted_by: UserId::new(3).unwrap(),
                reason: None,
            }
        );
        let request = cancel(json!({"acted_by_user_id": 3, "reason": null})).unwrap();
        assert_eq!(request.reason, None);
        let request = cancel(json!({"acted_by_user_id": 3, "reason": "Sold elsewhere"})).unwrap();
        assert_eq!(
            request.reason,
            Some(Comment::new("Sold elsewhere").unwrap())
        );
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let cases = [
            (json!({}), "Field 'acted_by_user_id' is required."),
            (
                json!({"acted_by_user_id": "3"}),
                "Field 'acted_by_user_id' must be a positive integer.",
            ),
            (
                json!({"acted_by_user_id": 3, "reason": "  "}),
                "Field 'reason' must not be blank.",
            ),
            (
                json!({"acted_by_user_id": 3, "reason": 5}),
                "Field 'reason' must be a string.",
            ),
            (
                json!({"acted_by_user_id": 3, "reason": "a\u{0}b"}),
                "Field 'reason' must not contain NUL characters.",
            ),
            (
                json!({"acted_by_user_id": 3, "comment": "x"}),
                "Field 'comment' is not a known field (expected: acted_by_user_id, reason).",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(cancel(body.clone()), Err(message.to_owned()), "{body}");
        }
        assert_eq!(
            cancel(json!({"acted_by_user_id": 3, "reason": "x".repeat(2001)})),
            Err("Field 'reason' must be at most 2000 characters.".to_owned())
        );
        assert!(cancel(json!({"acted_by_user_id": 3, "reason": "x".repeat(2000)})).is_ok());
    }
}
