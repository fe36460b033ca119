//! The domain model: identifiers, names, statuses, templates, instances, steps and audit entries.
//!
//! Values that come from outside are parsed into these types once, at the edge; inside the core a
//! `StepId` is known to be positive and an `EventName` known to be well-formed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::WorkflowError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Accepts positive integers only.
            pub fn new(value: i64) -> Result<Self, WorkflowError> {
                if value > 0 {
                    Ok(Self(value))
                } else {
                    Err(WorkflowError::validation($what, "must be a positive integer"))
                }
            }

            /// The raw value.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A template's id.
    TemplateId,
    "template_id"
);
id_type!(
    /// An instance's id.
    InstanceId,
    "instance_id"
);
id_type!(
    /// An instance step's id.
    StepId,
    "step_id"
);
id_type!(
    /// A user's id.
    UserId,
    "user_id"
);
id_type!(
    /// The id of the business entity an instance is about.
    EntityId,
    "entity_id"
);

/// Checks a short machine name: 1..=max characters from `[a-z0-9_.-]`, starting with a letter.
fn machine_name(field: &str, value: &str, max: usize) -> Result<(), WorkflowError> {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    let starts_with_letter = value.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if value.is_empty() || value.len() > max || !ok_chars || !starts_with_letter {
        return Err(WorkflowError::validation(
            field,
            format!(
                "must be 1 to {max} characters of a-z, 0-9, '_', '.' or '-', starting with a letter"
            ),
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts lower-case machine names only.
            pub fn new(value: impl Into<String>) -> Result<Self, WorkflowError> {
                let value = value.into();
                machine_name($field, &value, $max)?;
                Ok(Self(value))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An event name such as `booking.cancellation_requested`.
    EventName,
    "event",
    128
);
name_type!(
    /// An entity kind such as `booking`.
    EntityType,
    "entity_type",
    64
);
name_type!(
    /// A role name such as `finance_manager`.
    RoleName,
    "role",
    64
);

/// Longest comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// A decision comment: non-blank, at most [`MAX_COMMENT_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Comment(String);

impl Comment {
    /// Accepts a non-blank comment of bounded length.
    pub fn new(value: impl Into<String>) -> Result<Self, WorkflowError> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(WorkflowError::validation("comment", "must not be blank"));
        }
        if value.chars().count() > MAX_COMMENT_CHARS {
            return Err(WorkflowError::validation(
                "comment",
                format!("must be at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
        Ok(Self(value))
    }

    /// The comment as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who approves a step: one user, or whoever holds a role when the instance is created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Approver {
    /// One named user.
    User { user_id: UserId },
    /// The members of a role, snapshotted at trigger time.
    Role { role: RoleName },
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(#[doc = $text] $variant),+
        }

        impl $name {
            /// The stored and serialised spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// Lifecycle of an instance.
    InstanceStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Approved => "approved",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
);

status_enum!(
    /// Lifecycle of an instance step.
    StepStatus {
        Pending => "pending",
        AwaitingAction => "awaiting_action",
        Approved => "approved",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
);

status_enum!(
    /// What an audit entry records.
    AuditAction {
        InstanceCreated => "instance_created",
        StepActivated => "step_activated",
        StepApproved => "step_approved",
        StepRejected => "step_rejected",
        InstanceApproved => "instance_approved",
        InstanceRejected => "instance_rejected",
        InstanceCancelled => "instance_cancelled",
    }
);

status_enum!(
    /// Which outcome a callback reports.
    CallbackKind {
        OnApproved => "on_approved",
        OnRejected => "on_rejected",
    }
);

impl InstanceStatus {
    /// Whether the instance still counts as active (blocks a second trigger, pins its template).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStep {
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
}

/// A workflow template: what to ask, in which order, for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: TemplateId,
    pub name: String,
    pub event: EventName,
    pub entity_type: EntityType,
    pub version: i32,
    pub is_active: bool,
    pub steps: Vec<TemplateStep>,
}

/// One step of a running instance, with its eligible-user snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStep {
    pub id: StepId,
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    pub eligible_user_ids: Vec<UserId>,
    pub status: StepStatus,
    pub acted_by_user_id: Option<UserId>,
    pub comment: Option<String>,
    pub acted_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub instance_id: InstanceId,
    pub step_id: Option<StepId>,
    pub action: AuditAction,
    pub actor_user_id: Option<UserId>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
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

impl Instance {
    /// The id of this instance's step that `entry` names, if it names one. An order the instance
    /// does not have is a bug in whoever built the entry.
    pub fn audit_step_id(&self, entry: &NewAuditEntry) -> Result<Option<StepId>, WorkflowError> {
        entry
            .step_order
            .map(|order| {
                self.steps
                    .iter()
                    .find(|s| s.step_order == order)
                    .map(|s| s.id)
                    .ok_or_else(|| {
                        WorkflowError::Internal(format!("audit names unknown step {order}"))
                    })
            })
            .transpose()
    }
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
}

/// A step of an instance not yet stored (ids are assigned by the repository).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub step_order: i32,
    pub name: String,
    pub approver: Approver,
    pub eligible_user_ids: Vec<UserId>,
    pub status: StepStatus,
    pub activated_at: Option<DateTime<Utc>>,
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
    pub steps: Vec<NewStep>,
    pub audit: Vec<NewAuditEntry>,
}

/// An outcome notification for the platform, stored in the outbox with the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackEvent {
    pub kind: CallbackKind,
    pub instance_id: InstanceId,
    pub event: EventName,
    pub entity_type: EntityType,
    pub entity_id: EntityId,
    pub decided_by: UserId,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// A callback event taken from the outbox for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub attempts: i32,
    pub event: CallbackEvent,
}

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

/// The writes one decision makes, as computed by the state machine under the row locks.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub instance_status: InstanceStatus,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The steps whose state changed, with their new state.
    pub changed_steps: Vec<InstanceStep>,
    pub audit: Vec<NewAuditEntry>,
    pub callbacks: Vec<CallbackEvent>,
}

/// New contents for a template; applying it bumps the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    pub name: Option<String>,
    pub is_active: Option<bool>,
    pub steps: Option<Vec<TemplateStep>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert!(StepId::new(1).is_ok());
        assert!(StepId::new(0).is_err());
        assert!(UserId::new(-3).is_err());
    }

    #[test]
    fn names_are_machine_names() {
        assert!(EventName::new("booking.cancellation_requested").is_ok());
        assert!(EventName::new("").is_err());
        assert!(EventName::new("Booking").is_err());
        assert!(EntityType::new("1unit").is_err());
        assert!(RoleName::new("a".repeat(65)).is_err());
    }

    #[test]
    fn comments_are_non_blank_and_bounded() {
        assert!(Comment::new("ok").is_ok());
        assert!(Comment::new("  ").is_err());
        assert!(Comment::new("x".repeat(MAX_COMMENT_CHARS + 1)).is_err());
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [
            StepStatus::Pending,
            StepStatus::AwaitingAction,
            StepStatus::Approved,
            StepStatus::Rejected,
            StepStatus::Cancelled,
        ] {
            assert_eq!(StepStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(InstanceStatus::parse("done"), None);
    }
}
