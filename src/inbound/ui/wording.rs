//! Driving adapter, pages: the domain in words. Statuses, audit actions, approvers, times, and
//! every refusal as a sentence a person can act on (never a code or a JSON body). Status words
//! carry the meaning on their own; colour only repeats it.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use warp::http::StatusCode;

use super::names::Names;
use crate::domain::WorkflowError;
use crate::domain::model::{Approver, AuditAction, InstanceStatus, StepStatus};

/// A time as people read it, in UTC: "2026-11-26 10:42 UTC".
pub fn clock(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time element: readable text, exact machine value.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (clock(at)) } }
}

/// How long since `since`, roughly: "3 d 4 h", "2 h 5 min", "7 min", "under a minute".
pub fn waited(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, mins) {
        (0, 0, 0) => "under a minute".to_owned(),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An instance's status in words.
pub fn instance_status(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Pending => "Pending",
        InstanceStatus::InProgress => "In progress",
        InstanceStatus::Approved => "Approved",
        InstanceStatus::Rejected => "Rejected",
        InstanceStatus::Cancelled => "Cancelled",
    }
}

/// A step's status in words.
pub fn step_status(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "Not yet open",
        StepStatus::AwaitingAction => "Awaiting decision",
        StepStatus::Approved => "Approved",
        StepStatus::Rejected => "Rejected",
        StepStatus::Cancelled => "Cancelled",
        StepStatus::Skipped => "Skipped (its condition did not apply)",
    }
}

/// What an audit entry records, in words.
pub fn audit_action(action: AuditAction) -> &'static str {
    match action {
        AuditAction::InstanceCreated => "Request created",
        AuditAction::StepActivated => "Step opened for decision",
        AuditAction::ApprovalRecorded => "Approval recorded",
        AuditAction::StepApproved => "Step approved",
        AuditAction::StepRejected => "Step rejected",
        AuditAction::InstanceApproved => "Request approved",
        AuditAction::InstanceRejected => "Request rejected",
        AuditAction::InstanceCancelled => "Request cancelled",
        AuditAction::StepSkipped => "Step skipped",
        AuditAction::StepEscalated => "Step overdue: escalated",
    }
}

/// Who approves a step: "Finance Manager" or "anyone with role finance_manager".
pub fn approver(approver: &Approver, names: &Names) -> String {
    match approver {
        Approver::User { user_id } => names.of(*user_id),
        Approver::Role { role } => format!("anyone with role {role}"),
    }
}

/// The status a page answers with when a read fails.
pub fn failure_status(error: &WorkflowError) -> StatusCode {
    match error {
        WorkflowError::NotFound { .. } => StatusCode::NOT_FOUND,
        WorkflowError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        WorkflowError::NotAnApprover { .. }
        | WorkflowError::UserInactive { .. }
        | WorkflowError::NotTheInitiator { .. } => StatusCode::FORBIDDEN,
        WorkflowError::Unavailable(_) | WorkflowError::OutcomeUnknown(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        WorkflowError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    }
}

/// A refusal or failure as a sentence for the person acting. Internal details go to the log.
pub fn refusal(error: &WorkflowError) -> String {
    use WorkflowError as E;
    match error {
        E::NotFound { what } => format!("{} was not found.", capitalise(what)),
        E::NotAnApprover { .. } => {
            "You are not an approver of this step: only the users it was assigned to may decide it."
                .to_owned()
        }
        E::StepNotActionable { status, .. } => format!(
            "This step can't be decided now: it is {}.",
            step_status(*status).to_lowercase()
        ),
        E::AlreadyApproved { .. } => {
            "You already approved this step; it waits for the other approvers its quorum needs."
                .to_owned()
        }
        E::UserInactive { .. } => {
            "You are inactive in the directory, so you can't act; ask for your account to be reactivated."
                .to_owned()
        }
        E::UnknownUser { .. } => {
            "The user you act as is not in the directory; choose who you act as again.".to_owned()
        }
        E::Validation { field, message } => format!("The {field} {message}."),
        E::Unavailable(detail) => {
            tracing::warn!(%detail, "store unavailable");
            "The database can't be reached right now and nothing was changed; try again in a moment."
                .to_owned()
        }
        E::OutcomeUnknown(detail) => {
            tracing::warn!(%detail, "outcome unknown");
            "The database stopped answering after the change was sent, so it may have been recorded; reload the page to see."
                .to_owned()
        }
        E::Internal { .. } => {
            tracing::error!(error = %error.chain(), "internal error");
            "Something went wrong on our side; it has been logged. Try again.".to_owned()
        }
        other => format!("{}.", capitalise(&other.to_string())),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::model::UserId;

    #[test]
    fn waits_are_rounded_to_what_matters() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
        let after = |m| t0 + chrono::Duration::minutes(m);
        assert_eq!(waited(t0, t0), "under a minute");
        assert_eq!(waited(t0, after(7)), "7 min");
        assert_eq!(waited(t0, after(125)), "2 h 5 min");
        assert_eq!(waited(t0, after(3 * 1440 + 4 * 60 + 9)), "3 d 4 h");
        assert_eq!(waited(after(5), t0), "under a minute");
        assert_eq!(clock(after(42 + 120)), "2026-11-26 10:42 UTC");
    }

    #[test]
    fn refusals_are_sentences_without_internals() {
        let user = UserId::new(2).unwrap();
        assert_eq!(
            refusal(&WorkflowError::not_found("step 9")),
            "Step 9 was not found."
        );
        assert!(
            refusal(&WorkflowError::NotAnApprover { user, step: 4 }).contains("not an approver")
        );
        assert_eq!(
            refusal(&WorkflowError::validation("comment", "must not be blank")),
            "The comment must not be blank."
        );
        let internal = refusal(&WorkflowError::internal("pool poisoned at 0xdeadbeef"));
        assert!(!internal.contains("deadbeef"), "{internal}");
        let unavailable = refusal(&WorkflowError::Unavailable("tcp reset".into()));
        assert!(!unavailable.contains("tcp"), "{unavailable}");
        assert_eq!(
            failure_status(&WorkflowError::not_found("instance 3")),
            StatusCode::NOT_FOUND
        );
    }
}
