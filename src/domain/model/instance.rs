//! Runtime instances: their steps with the eligible-user snapshot, the audit trail, the inbox
//! view, and what the state machine hands the repository to store at trigger time.

use chrono::{DateTime, Utc};

use super::audit::AuditHash;
use super::due::DueRule;
use super::status::{AuditAction, CallbackKind, InstanceStatus, StepStatus};
use super::values::{
    Approver, EntityId, EntityType, EventName, InstanceId, StepId, TemplateId, UserId,
};

/// One step of a running instance, with its eligible-user snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStep {
    pub id: StepId,
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    pub eligible_user_ids: Vec<UserId>,
    /// How many distinct approvals approve the step (the template's quorum, resolved against
    /// the snapshot at trigger time; 1 for a plain step).
    pub quorum: u32,
    /// The approvals given so far, oldest first. A step is approved by the one that reaches
    /// its quorum; the others stay here with it.
    pub approvals: Vec<StepApproval>,
    pub status: StepStatus,
    pub acted_by_user_id: Option<UserId>,
    pub comment: Option<String>,
    pub acted_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    /// The template step's due date rule, copied at trigger time.
    pub due: Option<DueRule>,
    /// When the step becomes overdue: set when it is activated, if it has a rule.
    pub due_at: Option<DateTime<Utc>>,
    /// When the overdue scheduler handled the step (it is handled once).
    pub overdue_at: Option<DateTime<Utc>>,
}

/// One user's approval of a step, recorded whether or not it reached the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepApproval {
    /// Whose approval it is: the eligible user it counts for.
    pub user_id: UserId,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    /// The delegate who gave it on `user_id`'s behalf; `None` when `user_id` acted.
    pub acted_by: Option<UserId>,
}

/// One line of the append-only audit log, with the hash that chains it to the line before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub instance_id: InstanceId,
    pub step_id: Option<StepId>,
    pub action: AuditAction,
    pub actor_user_id: Option<UserId>,
    /// The delegator the actor acted for (a delegate's decision); `None` otherwise.
    pub on_behalf_of: Option<UserId>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    pub hash: AuditHash,
}

/// A runtime instance of a template, attached to one business entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: InstanceId,
    pub template_id: TemplateId,
    pub template_version: i32,
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    pub initiated_by: UserId,
    pub status: InstanceStatus,
    pub context: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<InstanceStep>,
    pub audit: Vec<AuditEntry>,
}

/// A step awaiting a user's action, with enough of its instance to show it in an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStep {
    pub step_id: StepId,
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    pub activated_at: Option<DateTime<Utc>>,
    pub instance_id: InstanceId,
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    /// The delegator whose step it is, when the user sees it as their delegate; `None` for a
    /// step awaiting the user themself.
    pub on_behalf_of: Option<UserId>,
}

/// A step of an instance not yet stored (ids are assigned by the repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    pub eligible_user_ids: Vec<UserId>,
    /// Approvals needed, resolved against `eligible_user_ids`.
    pub quorum: u32,
    pub status: StepStatus,
    pub activated_at: Option<DateTime<Utc>>,
    /// The template step's due date rule.
    pub due: Option<DueRule>,
    /// When the step becomes overdue, if it is activated and has a rule.
    pub due_at: Option<DateTime<Utc>>,
}

/// An audit entry not yet stored; `step_order` points at a step of the same instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub step_order: Option<i32>,
    pub action: AuditAction,
    pub actor_user_id: Option<UserId>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// An instance not yet stored, as the state machine builds it at trigger time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInstance {
    pub template_id: TemplateId,
    pub template_version: i32,
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    pub initiated_by: UserId,
    pub status: InstanceStatus,
    pub context: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    /// Set when the instance ends as it starts (every step skipped).
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<NewStep>,
    pub audit: Vec<NewAuditEntry>,
}

/// An event for the platform (an outcome, or a step that awaits its approvers), stored in the
/// outbox in the transaction of the change that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackEvent {
    pub kind: CallbackKind,
    pub instance_id: InstanceId,
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    /// The instance's status once the change is made.
    pub status: InstanceStatus,
    /// The step the event is about (`step.*` events), as it stood then.
    pub step: Option<EventStep>,
    /// Who caused the event: the decider, the canceller, or the initiator of a trigger; `None`
    /// for the engine itself (an overdue step).
    pub decided_by: Option<UserId>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// The step a `step.*` event is about: who may act on it (the snapshot) is the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStep {
    pub id: StepId,
    pub step_order: i32,
    pub name: String,
    pub eligible_user_ids: Vec<UserId>,
}

impl EventStep {
    /// The event's view of `step`.
    pub fn of(step: &InstanceStep) -> Self {
        Self {
            id: step.id,
            step_order: step.step_order,
            name: step.name.clone(),
            eligible_user_ids: step.eligible_user_ids.clone(),
        }
    }
}

/// The lease on a claimed outbox row: `attempts` as the claim left it. A mark names it and
/// changes the row only if nobody claimed it since and the lease has not run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    pub id: i64,
    pub attempts: i32,
}

/// A callback event taken from the outbox for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub attempts: i32,
    /// The event's public id (`evt_...`): unique, and the same at every redelivery.
    pub event_id: String,
    /// The event's place among its instance's events, from 1, without gaps.
    pub sequence: i64,
    pub event: CallbackEvent,
}

impl OutboxItem {
    /// The lease this claim holds.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            attempts: self.attempts,
        }
    }
}

/// A delivery that failed: the claim it held, why, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    pub lease: Lease,
    pub error: String,
    pub retry_at: DateTime<Utc>,
}
