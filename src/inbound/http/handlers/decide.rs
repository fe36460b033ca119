//! Driving adapter, HTTP: `POST /api/v1/workflow/steps/{id}/approve` and `.../reject`, deciding
//! a step.

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::{Answer, DecisionRequest, Instance, Once, StepId, Verdict};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::requests::{CommentText, parse};
use crate::inbound::http::responses::InstanceDto;
use crate::inbound::http::schemas::UserIdField;

/// The approve body: the comment is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ApproveRequest)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    acted_by_user_id: UserIdField,
    comment: Option<CommentText>,
}

impl ApproveBody {
    /// The domain request for `step`.
    pub fn try_into_domain(self, step: StepId) -> Result<DecisionRequest, ApiError> {
        Ok(DecisionRequest {
            step_id: step,
            acted_by: self.acted_by_user_id.0,
            verdict: Verdict::Approve {
                comment: self.comment.map(|c| c.0),
            },
        })
    }
}

/// The reject body: a reason is required.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RejectRequest)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    acted_by_user_id: UserIdField,
    comment: CommentText,
}

impl RejectBody {
    /// The domain request for `step`.
    pub fn try_into_domain(self, step: StepId) -> Result<DecisionRequest, ApiError> {
        Ok(DecisionRequest {
            step_id: step,
            acted_by: self.acted_by_user_id.0,
            verdict: Verdict::Reject {
                comment: self.comment.0,
            },
        })
    }
}

/// The answer to a decision: the instance, 200.
fn answer() -> impl Fn(&Instance) -> Answer + Copy + Send + Sync + 'static {
    render(StatusCode::OK, |i: &Instance| InstanceDto::from(i))
}

/// What makes a decision idempotent, when `key` holds a key: `verb` is `approve` or `reject`.
fn decision_once(
    key: &KeyHeader,
    step: StepId,
    verb: &str,
    body: &JsonObject,
) -> Result<Option<Once<Instance>>, ApiError> {
    let path = format!("/api/v1/workflow/steps/{step}/{verb}");
    once(key, &Method::POST, &path, body, answer())
}

async fn decide<S: WorkflowUseCases>(
    service: &S,
    request: DecisionRequest,
    once: Option<Once<Instance>>,
) -> Result<Response, ApiError> {
    let done = service.decide(request, once).await?;
    Ok(respond(done, answer()))
}

/// `POST /api/v1/workflow/steps/{id}/approve`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/steps/{id}/approve",
    tag = "steps",
    operation_id = "approve_step",
    summary = "Approve a step awaiting action",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The step's id."),
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = ApproveBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The instance after the decision.", body = crate::inbound::http::responses::InstanceDto),
        (status = 403, description = "`not_an_approver` or `user_inactive`.", body = crate::inbound::http::errors::ErrorBody),
        (status = 404, description = "`not_found`: no such step.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`step_not_actionable`: the step is not awaiting action; `already_approved`: this user already approved this quorum step.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`, `unknown_user` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/steps/{id}/approve", status = tracing::field::Empty)
)]
pub async fn approve<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let step = path_id(&raw_id, "step", StepId::new)?;
        let once = decision_once(&key, step, "approve", &body)?;
        let request = parse::<ApproveBody>(body, "")?.try_into_domain(step)?;
        decide(&*service, request, once).await
    }
    .await;
    finish(result)
}

/// `POST /api/v1/workflow/steps/{id}/reject`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/steps/{id}/reject",
    tag = "steps",
    operation_id = "reject_step",
    summary = "Reject a step awaiting action (a comment is required)",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The step's id."),
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = RejectBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The rejected instance.", body = crate::inbound::http::responses::InstanceDto),
        (status = 403, description = "`not_an_approver` or `user_inactive`.", body = crate::inbound::http::errors::ErrorBody),
        (status = 404, description = "`not_found`: no such step.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`step_not_actionable`: the step is not awaiting action; `already_approved`: this user already approved this quorum step.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`, `unknown_user` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/steps/{id}/reject", status = tracing::field::Empty)
)]
pub async fn reject<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let step = path_id(&raw_id, "step", StepId::new)?;
        let once = decision_once(&key, step, "reject", &body)?;
        let request = parse::<RejectBody>(body, "")?.try_into_domain(step)?;
        decide(&*service, request, once).await
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::model::Comment;

    fn object(body: Value) -> JsonObject {
        match body {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn approve(body: Value) -> Result<DecisionRequest, String> {
        parse::<ApproveBody>(object(body), "")
            .and_then(|b| b.try_into_domain(StepId::new(4).unwrap()))
            .map_err(|e| e.message)
    }

    fn reject(body: Value) -> Result<DecisionRequest, String> {
        parse::<RejectBody>(object(body), "")
            .and_then(|b| b.try_into_domain(StepId::new(4).unwrap()))
            .map_err(|e| e.message)
    }

    #[test]
    fn bodies_are_domain_decisions() {
        let request = approve(json!({"acted_by_user_id": 2})).unwrap();
        assert_eq!(request.step_id.get(), 4);
        assert_eq!(request.acted_by.get(), 2);
        assert_eq!(request.verdict, Verdict::Approve { comment: None });
        let request = approve(json!({"acted_by_user_id": 2, "comment": "ok"})).unwrap();
        assert_eq!(
            request.verdict,
            Verdict::Approve {
                comment: Some(Comment::new("ok").unwrap())
            }
        );
        let request = reject(json!({"acted_by_user_id": 1, "comment": "No."})).unwrap();
        assert_eq!(
            request.verdict,
            Verdict::Reject {
                comment: Comment::new("No.").unwrap()
            }
        );
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let cases = [
            (json!({}), "Field 'acted_by_user_id' is required."),
            (
                json!({"acted_by_user_id": 1.5}),
                "Field 'acted_by_user_id' must be a positive integer.",
            ),
            (
                json!({"acted_by_user_id": 1, "comment": " "}),
                "Field 'comment' must not be blank.",
            ),
            (
                json!({"acted_by_user_id": 1, "comment": 5}),
                "Field 'comment' must be a string.",
            ),
            (
                json!({"acted_by_user_id": 1, "reason": "x"}),
                "Field 'reason' is not a known field (expected: acted_by_user_id, comment).",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(approve(body.clone()), Err(message.to_owned()), "{body}");
        }
        assert_eq!(
            approve(json!({"acted_by_user_id": 1, "comment": "x".repeat(2001)})),
            Err("Field 'comment' must be at most 2000 characters.".to_owned())
        );
        for body in [
            json!({"acted_by_user_id": 1}),
            json!({"acted_by_user_id": 1, "comment": null}),
        ] {
            assert_eq!(reject(body), Err("Field 'comment' is required.".to_owned()));
        }
        // The actor is checked before the comment.
        assert_eq!(
            reject(json!({"acted_by_user_id": 0})),
            Err("Field 'acted_by_user_id' must be a positive integer.".to_owned())
        );
    }
}
