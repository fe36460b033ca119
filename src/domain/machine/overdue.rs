//! The state machine (domain core, pure): a step whose due date has passed. The engine itself
//! acts (no user): it reports the step overdue and applies the step's `on_overdue` rule.

use chrono::{DateTime, Utc};

use super::audit;
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    AuditAction, CallbackEvent, CallbackKind, Decided, EventStep, Instance, InstanceStatus,
    OnOverdue, StepId, StepStatus, UserId,
};

/// The comment of a step (and instance) rejected because its step was overdue.
pub const OVERDUE_COMMENT: &str = "overdue";

/// Handles step `step_id` of `instance` (which must hold all its steps, read under the row
/// locks) if it is overdue at `now`; `Ok(None)` when there is nothing to do: the instance has
/// ended, the step no longer awaits action, has no due date, is not yet due (`now < due_at`),
/// or was handled already. A step is handled once.
///
/// Handling marks the step handled (`overdue_at`), emits `step.overdue` (the step as it was
/// when it fell due), then applies the rule:
/// - `notify`: nothing more;
/// - `escalate`: `escalate_to` (the rule's approver, resolved by the caller to its active
///   users now; never the instance's initiator) joins the step's eligible users, audited `step_escalated` with no actor and the
///   users added as the comment; a `step.awaiting_action` event tells the new eligible set
///   when someone was added;
/// - `reject`: the step and the instance are rejected by the system (audit actor none, comment
///   `overdue`); the steps after it are cancelled; `instance.rejected`.
///
/// `NotFound` if the instance has no such step.
pub fn overdue(
    instance: &Instance,
    step_id: StepId,
    escalate_to: &[UserId],
    now: DateTime<Utc>,
) -> Result<Option<Decided>, WorkflowError> {
    let index = instance
        .steps
        .iter()
        .position(|s| s.id == step_id)
        .ok_or_else(|| WorkflowError::not_found(format!("step {step_id}")))?;
    let step = &instance.steps[index];
    let (Some(rule), Some(due_at)) = (&step.due, step.due_at) else {
        return Ok(None);
    };
    if instance.status != InstanceStatus::InProgress
        || step.status != StepStatus::AwaitingAction
        || step.overdue_at.is_some()
        || now < due_at
    {
        return Ok(None);
    }

    let mut next = instance.clone();
    next.steps[index].overdue_at = Some(now);
    next.updated_at = now;
    let event = |kind, status, step, comment: Option<&str>| CallbackEvent {
        kind,
        instance_id: instance.id,
        event: instance.event.clone(),
        entity_type: instance.entity_type.clone(),
        entity_id: instance.entity_id,
        status,
        step,
        decided_by: None,
        comment: comment.map(str::to_owned),
        at: now,
    };
    let mut callbacks = vec![event(
        CallbackKind::StepOverdue,
        instance.status,
        Some(EventStep::of(step)),
        None,
    )];
    let mut audit_entries = Vec::new();
    let mut changed = vec![index];

    match &rule.on_overdue {
        OnOverdue::Notify => {}
        OnOverdue::Escalate { .. } => {
            let eligible = &mut next.steps[index].eligible_user_ids;
            // Never the initiator: an escalation must not let anyone approve their own request
            // (which `forbid_self_approval` may have ruled out at trigger), as a delegation can't.
            let mut added: Vec<UserId> = escalate_to
                .iter()
                .copied()
                .filter(|user| !eligible.contains(user) && *user != instance.initiated_by)
                .collect();
            added.sort_unstable();
            added.dedup();
            eligible.extend(added.iter().copied());
            eligible.sort_unstable();
            let comment = if added.is_empty() {
                "nobody to add: every active member is already eligible".to_owned()
            } else {
                let ids: Vec<String> = added.iter().map(|u| u.get().to_string()).collect();
                format!("added users {}", ids.join(", "))
            };
            audit_entries.push(audit(
                Some(step.id),
                AuditAction::StepEscalated,
                None,
                None,
                Some(comment),
                now,
            ));
            if !added.is_empty() {
                callbacks.push(event(
                    CallbackKind::StepAwaitingAction,
                    instance.status,
                    Some(EventStep::of(&next.steps[index])),
                    None,
                ));
            }
        }
        OnOverdue::Reject => {
            {
                let rejected = &mut next.steps[index];
                rejected.status = StepStatus::Rejected;
                rejected.acted_by_user_id = None;
                rejected.acted_at = Some(now);
                rejected.comment = Some(OVERDUE_COMMENT.to_owned());
            }
            for (later, step) in next.steps.iter_mut().enumerate().skip(index + 1) {
                if step.status == StepStatus::Pending {
                    step.status = StepStatus::Cancelled;
                    changed.push(later);
                }
            }
            audit_entries.push(audit(
                Some(step.id),
                AuditAction::StepRejected,
                None,
                None,
                Some(OVERDUE_COMMENT.to_owned()),
                now,
            ));
            audit_entries.push(audit(
                None,
                AuditAction::InstanceRejected,
                None,
                None,
                Some(OVERDUE_COMMENT.to_owned()),
                now,
            ));
            next.status = InstanceStatus::Rejected;
            next.completed_at = Some(now);
            callbacks.push(event(
                CallbackKind::OnRejected,
                InstanceStatus::Rejected,
                None,
                Some(OVERDUE_COMMENT),
            ));
        }
    }

    // Every event carries the instance's status once the change is made.
    for callback in &mut callbacks {
        callback.status = next.status;
    }
    let changed_steps = changed.into_iter().map(|i| next.steps[i].clone()).collect();
    Ok(Some(Decided {
        instance: next,
        changed_steps,
        audit: audit_entries,
        callbacks,
    }))
}
