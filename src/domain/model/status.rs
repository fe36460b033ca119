//! Closed sets of states and actions: instance and step statuses, audit actions, callback kinds.

use std::fmt;

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = $text] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

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
        Skipped => "skipped",
    }
);

status_enum!(
    /// What an audit entry records.
    AuditAction {
        InstanceCreated => "instance_created",
        StepActivated => "step_activated",
        ApprovalRecorded => "approval_recorded",
        StepApproved => "step_approved",
        StepRejected => "step_rejected",
        InstanceApproved => "instance_approved",
        InstanceRejected => "instance_rejected",
        InstanceCancelled => "instance_cancelled",
        StepSkipped => "step_skipped",
        StepEscalated => "step_escalated",
    }
);

status_enum!(
    /// Which event a callback reports (the stored spelling; [`CallbackKind::event_type`] is
    /// the published one).
    CallbackKind {
        OnApproved => "on_approved",
        OnRejected => "on_rejected",
        OnCancelled => "on_cancelled",
        StepAwaitingAction => "step_awaiting_action",
        StepOverdue => "step_overdue",
    }
);

impl CallbackKind {
    /// The event's published type, as receivers see it (`instance.approved`, ...).
    pub fn event_type(self) -> &'static str {
        match self {
            Self::OnApproved => "instance.approved",
            Self::OnRejected => "instance.rejected",
            Self::OnCancelled => "instance.cancelled",
            Self::StepAwaitingAction => "step.awaiting_action",
            Self::StepOverdue => "step.overdue",
        }
    }

    /// The kind whose published type is `text`.
    pub fn from_event_type(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.event_type() == text)
    }
}

impl InstanceStatus {
    /// Whether the instance still counts as active (blocks a second trigger, pins its template).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }
}
