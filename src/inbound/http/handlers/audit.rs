//! Driving adapter, HTTP: `GET /api/v1/workflow/instances/{id}/audit/verify`, checking an
//! instance's audit trail against its hash chain.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::{AuditVerification, InstanceId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::responses::json;

/// `{"valid":true,"entries":N}` or `{"valid":false,"first_bad_entry_id":ID}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AuditVerification)]
pub enum VerificationDto {
    Valid {
        valid: bool,
        entries: usize,
    },
    Invalid {
        valid: bool,
        first_bad_entry_id: i64,
    },
}

impl From<AuditVerification> for VerificationDto {
    fn from(verification: AuditVerification) -> Self {
        match verification {
            AuditVerification::Valid { entries } => Self::Valid {
                valid: true,
                entries,
            },
            AuditVerification::Invalid { first_bad_entry_id } => Self::Invalid {
                valid: false,
                first_bad_entry_id,
            },
        }
    }
}

/// `GET /api/v1/workflow/instances/{id}/audit/verify`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/instances/{id}/audit/verify",
    tag = "instances",
    operation_id = "verify_audit",
    summary = "Check an instance's audit trail against its hash chain",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The instance's id."),
    ),
    responses(
        (status = 200, description = "Whether every entry's hash is what the chain gives; if not, the first entry that differs.", body = VerificationDto),
        (status = 404, description = "`not_found`: no such instance.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/instances/{id}/audit/verify", status = tracing::field::Empty)
)]
pub async fn verify_audit<S: WorkflowUseCases>(raw_id: String, service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "instance", InstanceId::new)?;
        let verification = service.verify_audit(id).await?;
        Ok(json(StatusCode::OK, &VerificationDto::from(verification)))
    }
    .await;
    finish(result)
}
