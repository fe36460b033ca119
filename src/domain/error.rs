//! Domain errors: every way a use case can be refused or fail.
//!
//! Layering: adapters translate their own failures (unique violations, lost connections, pool
//! time-outs) into these variants; the HTTP adapter maps each variant to one status and error code
//! in a single function. `Unavailable` and `Internal` carry details for the log only.

use super::model::{StepStatus, UserId};

/// What went wrong in a workflow use case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The named thing does not exist (`what` is e.g. "instance 7").
    #[error("{what} was not found")]
    NotFound { what: String },
    /// The acting user is not in the step's eligible-user snapshot.
    #[error("user {user} may not act on step {step}")]
    NotAnApprover { user: UserId, step: i64 },
    /// The step is not awaiting action.
    #[error("step {step} is {status}, not awaiting_action")]
    StepNotActionable { step: i64, status: StepStatus },
    /// An active instance already exists for this event and entity.
    #[error("an active instance (id {existing}) already exists for this event and entity")]
    InstanceAlreadyActive { existing: i64 },
    /// The template has active instances and can't be modified.
    #[error("template {template} has active instances")]
    TemplateInUse { template: i64 },
    /// No active template is configured for the event.
    #[error("no active template for event '{event}'")]
    NoActiveTemplate { event: String },
    /// A user id in the request is not a known user.
    #[error("user {user} does not exist ({field})")]
    UnknownUser { user: UserId, field: &'static str },
    /// A step resolved to nobody at trigger time (`approver` is e.g. "role 'finance_manager'").
    #[error("step {step_order} ({approver}) resolves to nobody")]
    NoEligibleApprover { approver: String, step_order: i32 },
    /// Input was well-formed but a field is invalid; `field` names it.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The store can't be reached right now; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected store failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WorkflowError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A not-found error for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}
