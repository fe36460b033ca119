//! The state machine: pure functions from (state, command, actor, now) to new state plus the
//! audit and callback events it implies, or a typed refusal. No I/O; the clock is an argument.

use chrono::{DateTime, Utc};

use super::error::WorkflowError;
use super::model::{
    Approver, AuditAction, CallbackEvent, CallbackKind, Decided, DecisionAudit, DecisionRequest,
    Delegation, EventStep, Instance, InstanceStatus, MAX_QUORUM, NewAuditEntry, NewInstance,
    NewStep, NewTemplate, Quorum, StepApproval, StepId, StepStatus, Template, TemplateStep,
    TemplateUpdate, TriggerRequest, User, UserId, Verdict, is_blank,
};

mod actors;
mod cancel;
mod overdue;

pub use actors::decide_as;
pub use cancel::cancel;
pub use overdue::overdue;

/// Builds a new instance of `template` for `request`, every step applying (as when no step
/// has a condition that is false); see [`trigger_with_conditions`].
pub fn trigger(
    template: &Template,
    request: TriggerRequest,
    snapshots: Vec<Vec<UserId>>,
    now: DateTime<Utc>,
) -> Result<NewInstance, WorkflowError> {
    let applies = vec![true; template.steps.len()];
    trigger_with_conditions(template, request, snapshots, &applies, now)
}

/// Builds a new instance of `template` for `request`.
///
/// `snapshots[i]` is who may act on `template.steps[i]` right now, and `applies[i]` whether
/// that step's condition let it in (`false` only for a condition that was false: one that
/// could not be evaluated keeps its step). A step that does not apply is created `skipped`
/// (audited `step_skipped`, with its condition as the comment) and is never activated; the
/// first step that applies is activated at once, so the instance starts `in_progress`. When
/// every step is skipped, the instance is approved at once (audited `instance_approved`, with
/// no actor: nobody decided). When the template forbids self-approval, the initiator is left
/// out of every snapshot; a step that applies and is left with nobody is `NoEligibleApprover`
/// (a skipped step needs nobody).
pub fn trigger_with_conditions(
    template: &Template,
    request: TriggerRequest,
    snapshots: Vec<Vec<UserId>>,
    applies: &[bool],
    now: DateTime<Utc>,
) -> Result<NewInstance, WorkflowError> {
    if !template.is_active {
        return Err(WorkflowError::NoActiveTemplate {
            event: request.event.to_string(),
        });
    }
    if template.entity_type != request.entity_type {
        return Err(WorkflowError::validation(
            "entity_type",
            format!(
                "event '{}' applies to '{}' entities, not '{}'",
                request.event, template.entity_type, request.entity_type
            ),
        ));
    }
    if template.steps.is_empty()
        || snapshots.len() != template.steps.len()
        || applies.len() != template.steps.len()
    {
        return Err(WorkflowError::internal(format!(
            "template {} has {} steps, {} snapshots and {} conditions",
            template.id,
            template.steps.len(),
            snapshots.len(),
            applies.len()
        )));
    }

    let entry = |step_order, action, actor_user_id, comment| NewAuditEntry {
        step_order,
        action,
        actor_user_id,
        comment,
        at: now,
    };
    let mut audit = vec![entry(
        None,
        AuditAction::InstanceCreated,
        Some(request.initiated_by),
        None,
    )];
    let mut steps = Vec::with_capacity(template.steps.len());
    let mut activated = false;
    for ((step, mut eligible), &applies) in template.steps.iter().zip(snapshots).zip(applies) {
        eligible.sort_unstable();
        eligible.dedup();
        let resolved = !eligible.is_empty();
        if template.forbid_self_approval {
            eligible.retain(|user| *user != request.initiated_by);
        }
        if !applies {
            // Kept as it would have been, for the record; nobody is ever asked to act on it.
            let quorum = step.quorum.required(eligible.len()).max(1);
            audit.push(entry(
                Some(step.step_order),
                AuditAction::StepSkipped,
                None,
                step.when
                    .as_ref()
                    .map(|when| format!("condition is false: {when}")),
            ));
            steps.push(NewStep {
                step_order: step.step_order,
                name: step.name.clone(),
                approver: step.approver.clone(),
                quorum: u32::try_from(quorum).unwrap_or(u32::MAX),
                eligible_user_ids: eligible,
                status: StepStatus::Skipped,
                activated_at: None,
                due: step.due.clone(),
                due_at: None,
            });
            continue;
        }
        if eligible.is_empty() {
            let mut approver = describe(&step.approver);
            if resolved {
                approver.push_str(" without the initiator, as self-approval is forbidden");
            }
            return Err(WorkflowError::NoEligibleApprover {
                approver,
                step_order: step.step_order,
            });
        }
        let required = step.quorum.required(eligible.len());
        if required > eligible.len() {
            return Err(WorkflowError::QuorumOutOfReach {
                approver: describe(&step.approver),
                step_order: step.step_order,
                required,
                eligible: eligible.len(),
            });
        }
        let first = !activated;
        activated = true;
        if first {
            audit.push(entry(
                Some(step.step_order),
                AuditAction::StepActivated,
                None,
                None,
            ));
        }
        steps.push(NewStep {
            step_order: step.step_order,
            name: step.name.clone(),
            approver: step.approver.clone(),
            quorum: u32::try_from(required).unwrap_or(u32::MAX),
            eligible_user_ids: eligible,
            status: if first {
                StepStatus::AwaitingAction
            } else {
                StepStatus::Pending
            },
            activated_at: first.then_some(now),
            due: step.due.clone(),
            // The clock starts when the step is activated.
            due_at: step
                .due
                .as_ref()
                .filter(|_| first)
                .map(|rule| rule.due_in.due_at(now)),
        });
    }

    let status = if activated {
        InstanceStatus::InProgress
    } else {
        // Nothing to ask anyone: the instance is approved as it starts.
        audit.push(entry(None, AuditAction::InstanceApproved, None, None));
        InstanceStatus::Approved
    };
    Ok(NewInstance {
        template_id: template.id,
        template_version: template.version,
        event: request.event,
        entity_type: request.entity_type,
        entity_id: request.entity_id,
        initiated_by: request.initiated_by,
        status,
        context: request.context,
        created_at: now,
        completed_at: (!activated).then_some(now),
        steps,
        audit,
    })
}

/// Decides one step of `instance` (which must hold all its steps, read under the row locks).
///
/// Refusals, in the order checked: the step is not part of the instance (`NotFound`); the actor
/// is not in the step's snapshot (`NotAnApprover`); the step is not `awaiting_action`, or the
/// instance has ended (`StepNotActionable`); the actor already approved this step
/// (`AlreadyApproved`: on a quorum step each user counts once, and may not take it back with a
/// rejection either).
///
/// An approval that does not yet reach the step's quorum is recorded on the step and audited
/// `approval_recorded`; the step stays `awaiting_action`. The one that reaches it approves the
/// step as a plain approval does (on a quorum step it is audited `approval_recorded`, then
/// `step_approved`). One rejection rejects the step and the instance, whatever was approved.
pub fn decide(
    instance: &Instance,
    request: &DecisionRequest,
    now: DateTime<Utc>,
) -> Result<Decided, WorkflowError> {
    decide_for(instance, request, request.acted_by, now)
}

/// Decides like [`decide`], with `request.acted_by` acting for `principal`: the user whose
/// eligibility and approval count (the actor themself, or the delegator a delegate acts for).
/// The audit entries name the actor, and `principal` as `on_behalf_of` when it is another user;
/// a quorum step records the approval as `principal`'s, with the actor noted.
pub(crate) fn decide_for(
    instance: &Instance,
    request: &DecisionRequest,
    principal: UserId,
    now: DateTime<Utc>,
) -> Result<Decided, WorkflowError> {
    let on_behalf_of = (principal != request.acted_by).then_some(principal);
    let audit = |step_id, action, actor_user_id: Option<UserId>, comment, at| {
        let on_behalf_of = actor_user_id.and(on_behalf_of);
        audit(step_id, action, actor_user_id, on_behalf_of, comment, at)
    };
    let index = instance
        .steps
        .iter()
        .position(|s| s.id == request.step_id)
        .ok_or_else(|| WorkflowError::not_found(format!("step {}", request.step_id)))?;
    let step = &instance.steps[index];
    if !step.eligible_user_ids.contains(&principal) {
        return Err(WorkflowError::NotAnApprover {
            user: request.acted_by,
            step: step.id.get(),
        });
    }
    if step.status != StepStatus::AwaitingAction || instance.status != InstanceStatus::InProgress {
        return Err(WorkflowError::StepNotActionable {
            step: step.id.get(),
            status: step.status,
        });
    }
    if step.approvals.iter().any(|a| a.user_id == principal) {
        return Err(WorkflowError::AlreadyApproved {
            user: principal,
            step: step.id.get(),
        });
    }

    let actor = Some(request.acted_by);
    let mut next = instance.clone();
    let mut changed = Vec::new();
    let mut audit_entries = Vec::new();
    let (comment, action) = match &request.verdict {
        Verdict::Approve { comment } => (
            comment.as_ref().map(|c| c.as_str().to_owned()),
            StepStatus::Approved,
        ),
        Verdict::Reject { comment } => (Some(comment.as_str().to_owned()), StepStatus::Rejected),
    };
    let quorum_step = step.quorum > 1;
    if action == StepStatus::Approved {
        next.steps[index].approvals.push(StepApproval {
            user_id: principal,
            comment: comment.clone(),
            at: now,
            acted_by: on_behalf_of.map(|_| request.acted_by),
        });
        if quorum_step {
            audit_entries.push(audit(
                Some(step.id),
                AuditAction::ApprovalRecorded,
                actor,
                comment.clone(),
                now,
            ));
        }
        if next.steps[index].approvals.len() < step.quorum as usize {
            // Not there yet: the step keeps waiting for the others.
            next.updated_at = now;
            let changed_steps = vec![next.steps[index].clone()];
            return Ok(Decided {
                instance: next,
                changed_steps,
                audit: audit_entries,
                callbacks: Vec::new(),
            });
        }
    }
    {
        let decided = &mut next.steps[index];
        decided.status = action;
        decided.acted_by_user_id = actor;
        decided.acted_at = Some(now);
        decided.comment = comment.clone();
    }
    changed.push(index);
    let step_audit = if action == StepStatus::Approved {
        AuditAction::StepApproved
    } else {
        AuditAction::StepRejected
    };
    audit_entries.push(audit(
        Some(step.id),
        step_audit,
        actor,
        comment.clone(),
        now,
    ));

    // The step to activate next: skipped steps are passed over (they never wait for anyone).
    let following_index =
        (index + 1..next.steps.len()).find(|&i| next.steps[i].status == StepStatus::Pending);
    let callback_kind = if action == StepStatus::Rejected {
        for (later, step) in next.steps.iter_mut().enumerate().skip(index + 1) {
            // Skipped steps stay skipped: they were never open.
            if step.status == StepStatus::Pending {
                step.status = StepStatus::Cancelled;
                changed.push(later);
            }
        }
        audit_entries.push(audit(None, AuditAction::InstanceRejected, actor, None, now));
        next.status = InstanceStatus::Rejected;
        Some(CallbackKind::OnRejected)
    } else if let Some(at) = following_index {
        let following = &mut next.steps[at];
        following.status = StepStatus::AwaitingAction;
        following.activated_at = Some(now);
        following.due_at = following.due.as_ref().map(|rule| rule.due_in.due_at(now));
        audit_entries.push(audit(
            Some(following.id),
            AuditAction::StepActivated,
            None,
            None,
            now,
        ));
        changed.push(at);
        Some(CallbackKind::StepAwaitingAction)
    } else {
        audit_entries.push(audit(None, AuditAction::InstanceApproved, actor, None, now));
        next.status = InstanceStatus::Approved;
        Some(CallbackKind::OnApproved)
    };

    next.updated_at = now;
    let ended = !next.status.is_active();
    next.completed_at = ended.then_some(now);
    // The next approvers are told their step awaits them; the outcome ends the instance.
    let step = (!ended)
        .then(|| following_index.map(|at| EventStep::of(&next.steps[at])))
        .flatten();
    let callbacks = callback_kind
        .map(|kind| CallbackEvent {
            kind,
            instance_id: instance.id,
            event: instance.event.clone(),
            entity_type: instance.entity_type.clone(),
            entity_id: instance.entity_id,
            status: next.status,
            step,
            decided_by: Some(request.acted_by),
            comment: if ended { comment } else { None },
            at: now,
        })
        .into_iter()
        .collect();
    let changed_steps = changed.into_iter().map(|i| next.steps[i].clone()).collect();
    Ok(Decided {
        instance: next,
        changed_steps,
        audit: audit_entries,
        callbacks,
    })
}

/// The events a freshly stored instance starts with, caused by its initiator: one
/// `step.awaiting_action` per step it activated, or `instance.approved` when it was approved
/// as it started (every step skipped). (The PostgreSQL store builds the same rows in the
/// trigger's statement, as the ids are only known there.)
pub fn trigger_events(instance: &Instance) -> Vec<CallbackEvent> {
    let event = |kind, step| CallbackEvent {
        kind,
        instance_id: instance.id,
        event: instance.event.clone(),
        entity_type: instance.entity_type.clone(),
        entity_id: instance.entity_id,
        status: instance.status,
        step,
        decided_by: Some(instance.initiated_by),
        comment: None,
        at: instance.created_at,
    };
    if instance.status == InstanceStatus::Approved {
        return vec![event(CallbackKind::OnApproved, None)];
    }
    instance
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::AwaitingAction)
        .map(|s| event(CallbackKind::StepAwaitingAction, Some(EventStep::of(s))))
        .collect()
}

/// Checks a template's step list: at least one step, orders 1..n in sequence, non-blank names.
pub fn validate_template_steps(steps: &[TemplateStep]) -> Result<(), WorkflowError> {
    if steps.is_empty() {
        return Err(WorkflowError::validation(
            "steps",
            "must list at least one step",
        ));
    }
    for (index, step) in steps.iter().enumerate() {
        let expected = i32::try_from(index + 1).unwrap_or(i32::MAX);
        if step.step_order != expected {
            return Err(WorkflowError::validation(
                format!("steps[{index}].step_order"),
                format!("must be {expected}: steps are numbered 1..n in order"),
            ));
        }
        validate_name(&format!("steps[{index}].name"), &step.name)?;
        validate_quorum(index, step)?;
    }
    Ok(())
}

/// A quorum is 1 to [`MAX_QUORUM`] or "all"; a step with one named user can need only one.
fn validate_quorum(index: usize, step: &TemplateStep) -> Result<(), WorkflowError> {
    let field = format!("steps[{index}].quorum");
    match (step.quorum, &step.approver) {
        (Quorum::Count(n), _) if n == 0 || n > MAX_QUORUM => Err(WorkflowError::validation(
            field,
            format!("must be 1 to {MAX_QUORUM}, or \"all\""),
        )),
        (Quorum::Count(n), Approver::User { user_id }) if n > 1 => Err(WorkflowError::validation(
            field,
            format!(
                "must be 1 or \"all\": step {} is approved by user {user_id} alone",
                step.step_order
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks a new template: its name and its steps.
pub fn validate_new_template(template: &NewTemplate) -> Result<(), WorkflowError> {
    validate_name("name", &template.name)?;
    validate_template_steps(&template.steps)
}

/// Checks a user of the directory: its name, and how many roles it lists.
pub fn validate_user(user: &User) -> Result<(), WorkflowError> {
    validate_name("name", &user.name)?;
    if user.roles.len() > MAX_USER_ROLES {
        return Err(WorkflowError::validation(
            "roles",
            format!("must list at most {MAX_USER_ROLES} roles"),
        ));
    }
    Ok(())
}

/// Checks a delegation before it is stored: `until` after `now`, a delegate other than the
/// delegator (the reason is a [`Comment`](super::model::Comment), checked when parsed).
pub fn validate_delegation(
    delegation: &Delegation,
    now: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    if delegation.until <= now {
        return Err(WorkflowError::validation("until", "must be in the future"));
    }
    if delegation.to_user_id == delegation.user_id {
        return Err(WorkflowError::validation(
            "to_user_id",
            format!(
                "must be another user: user {} can't delegate to themself",
                delegation.user_id
            ),
        ));
    }
    Ok(())
}

/// Most roles one user may list (duplicates included).
pub const MAX_USER_ROLES: usize = 100;

/// Checks a template change: its name, if given, and its steps, if given.
pub fn validate_template_update(update: &TemplateUpdate) -> Result<(), WorkflowError> {
    if let Some(name) = &update.name {
        validate_name("name", name)?;
    }
    if let Some(steps) = &update.steps {
        validate_template_steps(steps)?;
    }
    Ok(())
}

/// Longest template or step name, in characters.
const MAX_NAME_CHARS: usize = 200;

fn validate_name(field: &str, name: &str) -> Result<(), WorkflowError> {
    if is_blank(name) || name.chars().count() > MAX_NAME_CHARS {
        return Err(WorkflowError::validation(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, not blank"),
        ));
    }
    Ok(())
}

fn describe(approver: &Approver) -> String {
    match approver {
        Approver::User { user_id } => format!("user {user_id}"),
        Approver::Role { role } => format!("role '{role}'"),
    }
}

fn audit(
    step_id: Option<StepId>,
    action: AuditAction,
    actor_user_id: Option<UserId>,
    on_behalf_of: Option<UserId>,
    comment: Option<String>,
    at: DateTime<Utc>,
) -> DecisionAudit {
    DecisionAudit {
        step_id,
        action,
        actor_user_id,
        on_behalf_of,
        comment,
        at,
    }
}

#[cfg(test)]
mod tests;
