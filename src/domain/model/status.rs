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
        ApprovalRecorded => "approval_recorded",
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
        OnCancelled => "on_cancelled",
    }
);

impl InstanceStatus {
    /// Whether the instance still counts as active (blocks a second trigger, pins its template).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::InProgress)
    }
}
