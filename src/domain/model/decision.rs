//! Commands and their outcomes: a validated trigger, a decision with its verdict, and the
//! finished decision the repository persists.

use chrono::{DateTime, Utc};

use super::instance::{CallbackEvent, Instance, InstanceStep};
use super::status::AuditAction;
use super::values::{Comment, EntityId, EntityType, EventName, StepId, UserId};

/// What a trigger asks for, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRequest {
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    pub initiated_by: UserId,
    pub context: Option<serde_json::Value>,
}

/// Approve or reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Approve, optionally with a comment.
    Approve { comment: Option<Comment> },
    /// Reject; a reason is required.
    Reject { comment: Comment },
}

/// A decision on one step, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRequest {
    pub step_id: StepId,
    pub acted_by: UserId,
    pub verdict: Verdict,
}

/// An audit entry a decision appends; it names the step by id (the steps exist already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionAudit {
    pub step_id: Option<StepId>,
    pub action: AuditAction,
    pub actor_user_id: Option<UserId>,
    /// The delegator the actor acted for, if the actor is a delegate.
    pub on_behalf_of: Option<UserId>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// A finished decision, as the state machine computes it under the row locks: the instance as
/// it now stands, and exactly what the repository must write for it. Adapters persist this and
/// nothing else; they never call back into the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The instance after the decision. Its `audit` does not yet hold the entries below: the
    /// repository assigns their ids when it stores them, then appends them.
    pub instance: Instance,
    /// The steps whose state changed, as they now are in `instance`.
    pub changed_steps: Vec<InstanceStep>,
    /// The audit entries to append, in order.
    pub audit: Vec<DecisionAudit>,
    /// The outcome notifications to put in the outbox.
    pub callbacks: Vec<CallbackEvent>,
}
