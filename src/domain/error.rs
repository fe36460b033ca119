//! Domain errors: every way a use case can be refused or fail.
//!
//! Layering: adapters translate their own failures (unique violations, lost connections, pool
//! time-outs) into these variants; the HTTP adapter maps each variant to one status and error code
//! in a single function. `Unavailable` and `Internal` carry details for the log only; `Internal`
//! keeps its cause so that the log shows the whole chain.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use super::model::{InstanceStatus, StepStatus, UserId};

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
    /// The user already approved this (quorum) step; each user counts once.
    #[error("user {user} already approved step {step}")]
    AlreadyApproved { user: UserId, step: i64 },
    /// Only the user who started an instance may cancel it.
    #[error("user {user} did not initiate instance {instance}")]
    NotTheInitiator { user: UserId, instance: i64 },
    /// The instance has ended (approved, rejected or cancelled) and can't be cancelled.
    #[error("instance {instance} is {status}, not active")]
    InstanceNotActive {
        instance: i64,
        status: InstanceStatus,
    },
    /// An active instance already exists for this event and entity.
    #[error("an active instance (id {existing}) already exists for this event and entity")]
    InstanceAlreadyActive { existing: i64 },
    /// The template has active instances and can't be modified.
    #[error("template {template} has active instances")]
    TemplateInUse { template: i64 },
    /// Another template is already active for this event (at most one may be).
    #[error("another template is already active for event '{event}'")]
    TemplateConflict { event: String },
    /// No active template is configured for the event.
    #[error("no active template for event '{event}'")]
    NoActiveTemplate { event: String },
    /// A user id in the request is not a known user.
    #[error("user {user} does not exist ({field})")]
    UnknownUser { user: UserId, field: &'static str },
    /// The acting or initiating user is inactive in the directory.
    #[error("user {user} is inactive")]
    UserInactive { user: UserId },
    /// A step resolved to nobody at trigger time (`approver` is e.g. "role 'finance_manager'").
    #[error("step {step_order} ({approver}) resolves to nobody")]
    NoEligibleApprover { approver: String, step_order: i32 },
    /// A step's quorum needs more approvals than its snapshot has users at trigger time.
    #[error(
        "step {step_order} ({approver}) needs {required} approvals but {eligible} can give one"
    )]
    QuorumOutOfReach {
        approver: String,
        step_order: i32,
        required: usize,
        eligible: usize,
    },
    /// The delegation would close a cycle: its delegate already delegates, running, to the
    /// delegator.
    #[error("user {to_user} already delegates to user {user}")]
    DelegationCycle { user: UserId, to_user: UserId },
    /// A webhook delivery that is pending or delivered (or being sent right now) can't be
    /// re-queued; `reason` says which.
    #[error("delivery {delivery} can't be retried: {reason}")]
    DeliveryNotRetryable { delivery: i64, reason: String },
    /// Input was well-formed but a field is invalid; `field` names it.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// An idempotency key already used for a different request.
    #[error("idempotency key '{key}' was already used for a different request")]
    IdempotencyKeyReused { key: String },
    /// The deadline passed (or the connection was lost) after the change was sent to the store:
    /// it may have been applied. A retry with the same idempotency key settles it.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The store can't be reached right now; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected store failure.
    #[error("internal error: {message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

impl WorkflowError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The refusal of a delegate who may not act: an inactive user (field `to_user_id`).
    pub fn inactive_delegate(user: UserId) -> Self {
        Self::validation(
            "to_user_id",
            format!("user {user} is inactive; only an active user can be a delegate"),
        )
    }

    /// A not-found error for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// An internal error with no underlying cause (a broken invariant).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// An internal error caused by `source`, which is kept for the log.
    pub fn internal_from(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(Cause(Arc::new(source))),
        }
    }

    /// The error and every cause under it, for the log: "a: b: c".
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = self.source();
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }
}

/// The cause of an internal error. Shared so that errors stay cheap to clone; compared by
/// message so that tests can match on errors.
#[derive(Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync>);

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Cause {}
