//! Driving adapter, HTTP errors: the one place where domain errors and framework rejections
//! become status codes and the `{"error":{"code","message"}}` body. Internal details are
//! logged, never returned.

use std::convert::Infallible;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::domain::WorkflowError;

/// Every error code the API answers with (the README's table of errors): the `code` of the
/// error body, listed as an enum in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    NotAnApprover,
    UserInactive,
    NotTheInitiator,
    NotFound,
    MethodNotAllowed,
    StepNotActionable,
    InstanceNotActive,
    InstanceAlreadyActive,
    AlreadyApproved,
    TemplateInUse,
    TemplateConflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    IdempotencyKeyReused,
    NoActiveTemplate,
    UnknownUser,
    NoEligibleApprover,
    DelegationCycle,
    DeliveryNotRetryable,
    Internal,
    Unavailable,
    OutcomeUnknown,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NotAnApprover => "not_an_approver",
            Self::UserInactive => "user_inactive",
            Self::NotTheInitiator => "not_the_initiator",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::StepNotActionable => "step_not_actionable",
            Self::InstanceNotActive => "instance_not_active",
            Self::InstanceAlreadyActive => "instance_already_active",
            Self::AlreadyApproved => "already_approved",
            Self::TemplateInUse => "template_in_use",
            Self::TemplateConflict => "template_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::NoActiveTemplate => "no_active_template",
            Self::UnknownUser => "unknown_user",
            Self::NoEligibleApprover => "no_eligible_approver",
            Self::DelegationCycle => "delegation_cycle",
            Self::DeliveryNotRetryable => "delivery_not_retryable",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// The error body: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable `code` for programs, a `message` in words for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the body is not a JSON object.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, message)
    }

    /// 404 for anything that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 413: body over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!(
                "The request body is larger than {} KiB; send a smaller body.",
                limit / 1024
            ),
        )
    }

    /// 415: body without a JSON content type.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Send the body as JSON with the header 'Content-Type: application/json'.",
        )
    }

    /// 422: a field (or query parameter) is missing, unknown, mistyped or out of range.
    pub fn validation(field: &str, message: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            format!("Field '{field}' {message}."),
        )
    }

    /// 500: the details go to the log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "An internal error occurred; it has been logged.",
        )
    }

    /// The response with the error body.
    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}

impl From<WorkflowError> for ApiError {
    fn from(error: WorkflowError) -> Self {
        use WorkflowError as E;
        match error {
            E::NotFound { what } => {
                Self::not_found(format!("{} was not found.", capitalise(&what)))
            }
            E::NotAnApprover { user, step } => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::NotAnApprover,
                format!("User {user} is not an approver of step {step}."),
            ),
            E::StepNotActionable { step, status } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::StepNotActionable,
                format!(
                    "Step {step} is {status}; only a step that is awaiting_action can be decided."
                ),
            ),
            E::AlreadyApproved { user, step } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyApproved,
                format!(
                    "User {user} already approved step {step}; each approver counts once toward its quorum."
                ),
            ),
            E::NotTheInitiator { user, instance } => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::NotTheInitiator,
                format!(
                    "User {user} did not start instance {instance}; only its initiator may cancel it."
                ),
            ),
            E::InstanceNotActive { instance, status } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::InstanceNotActive,
                format!(
                    "Instance {instance} is {status}; only a pending or in_progress instance can be cancelled."
                ),
            ),
            E::InstanceAlreadyActive { existing } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::InstanceAlreadyActive,
                format!(
                    "Instance {existing} is already active for this event and entity; decide or end it first."
                ),
            ),
            E::TemplateInUse { template } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::TemplateInUse,
                format!(
                    "Template {template} has active instances; it can be changed once they have ended."
                ),
            ),
            E::TemplateConflict { event } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::TemplateConflict,
                format!(
                    "Another template is already active for event '{event}'; deactivate it first, or save this one with is_active false."
                ),
            ),
            E::NoActiveTemplate { event } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NoActiveTemplate,
                format!("No active template handles event '{event}'."),
            ),
            E::UnknownUser { user, field } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UnknownUser,
                format!("Field '{field}': user {user} does not exist."),
            ),
            E::UserInactive { user } => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::UserInactive,
                format!("User {user} is inactive; reactivate the user to let it act."),
            ),
            E::NoEligibleApprover {
                approver,
                step_order,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NoEligibleApprover,
                format!(
                    "Step {step_order} ({approver}) has nobody who could approve it; assign the role or reactivate the user first."
                ),
            ),
            E::QuorumOutOfReach {
                approver,
                step_order,
                required,
                eligible,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NoEligibleApprover,
                format!(
                    "Step {step_order} ({approver}) needs {required} approvals but only {eligible} users can approve it; assign the role to more users or lower the step's quorum."
                ),
            ),
            E::DelegationCycle { user, to_user } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::DelegationCycle,
                format!(
                    "User {to_user} already delegates to user {user}; end that delegation first, as delegations may not form a cycle."
                ),
            ),
            E::DeliveryNotRetryable { delivery, reason } => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::DeliveryNotRetryable,
                format!(
                    "Delivery {delivery} {reason}; only a failed or dead delivery can be retried."
                ),
            ),
            E::Validation { field, message } => Self::validation(&field, &message),
            E::IdempotencyKeyReused { key } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "Idempotency-Key '{key}' was already used for a different request; use a new key for a new request."
                ),
            ),
            E::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "The database can't be reached right now; retry later.",
                )
            }
            E::OutcomeUnknown(detail) => {
                tracing::warn!(%detail, "outcome unknown");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::OutcomeUnknown,
                    "The change may have been applied; retry with the same Idempotency-Key, or read the instance.",
                )
            }
            E::Internal { .. } => {
                // The whole chain goes to the log (the span says which request it was); the
                // client gets the generic body.
                tracing::error!(error = %error.chain(), "internal error");
                Self::internal()
            }
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Turns framework rejections (no route, wrong method, and the body filter's 415, 413 and 400)
/// into the error body. Handlers never reject: they answer their own errors.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found("No such resource; check the path.")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "This method is not allowed on this path.",
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::validation("query", "is not a well-formed query string")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::payload_too_large(super::MAX_BODY_BYTES)
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::unsupported_media_type()
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        ApiError::internal()
    };
    Ok(error.into_response())
}
