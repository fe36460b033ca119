//! Validated values: identifiers, machine names, comments and approvers. Parsing untrusted
//! input into these is the edge's job; inside the core they carry the proof of validity.

use std::fmt;

use crate::domain::error::WorkflowError;
use crate::domain::model::is_blank;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
// Other parts of the model (the webhooks') declare their ids with it too.
pub(crate) use id_type;

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
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment(String);

impl Comment {
    /// Accepts a non-blank comment of bounded length.
    pub fn new(value: impl Into<String>) -> Result<Self, WorkflowError> {
        let value = value.into();
        if is_blank(&value) {
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Approver {
    /// One named user.
    User { user_id: UserId },
    /// The members of a role, snapshotted at trigger time.
    Role { role: RoleName },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{InstanceStatus, StepStatus};

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
        assert!(Comment::new("\u{200B}\u{2060}\u{FEFF}").is_err());
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
