//! Conditional steps in the state machine: a step whose condition was false is created
//! `skipped` and is passed over by every later transition; it never waits for anyone.

use super::fixtures::{
    approve, assert_consistent, audit_entry, now, reject, template, template_step,
    three_step_instance, trigger_request, uid, user,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{decide, trigger_events, trigger_with_conditions};
use crate::domain::model::{
    AuditAction, CallbackKind, Condition, InstanceStatus, StepStatus, Template,
};

fn conditional_template() -> Template {
    let mut template = template();
    template.steps.push(template_step(3, "Director", user(5)));
    template.steps[1].when = Some(Condition::new("context.amount > 10").unwrap());
    template
}

#[test]
fn a_skipped_step_needs_no_eligible_user() {
    // Step 2's user is in no snapshot: it would be refused, were it not skipped.
    let new = trigger_with_conditions(
        &conditional_template(),
        trigger_request(),
        vec![vec![uid(1)], vec![], vec![uid(5)]],
        &[true, false, true],
        now(),
    )
    .unwrap();

    let statuses: Vec<_> = new.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            StepStatus::AwaitingAction,
            StepStatus::Skipped,
            StepStatus::Pending
        ]
    );
    assert_eq!(new.steps[1].quorum, 1);
    assert_eq!(
        new.audit,
        vec![
            audit_entry(None, AuditAction::InstanceCreated, Some(3), None),
            audit_entry(Some(1), AuditAction::StepActivated, None, None),
            audit_entry(
                Some(2),
                AuditAction::StepSkipped,
                None,
                Some("condition is false: context.amount > 10")
            ),
        ]
    );
}

#[test]
fn a_step_that_applies_still_needs_someone() {
    let err = trigger_with_conditions(
        &conditional_template(),
        trigger_request(),
        vec![vec![uid(1)], vec![], vec![uid(5)]],
        &[true, true, true],
        now(),
    )
    .unwrap_err();

    assert!(
        matches!(err, WorkflowError::NoEligibleApprover { step_order: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn one_condition_per_step_is_required() {
    let err = trigger_with_conditions(
        &conditional_template(),
        trigger_request(),
        vec![vec![uid(1)], vec![uid(2)], vec![uid(5)]],
        &[true],
        now(),
    )
    .unwrap_err();

    assert!(matches!(err, WorkflowError::Internal { .. }), "{err:?}");
}

#[test]
fn an_instance_approved_at_once_reports_its_outcome_as_its_first_event() {
    let mut instance = three_step_instance();
    instance.status = InstanceStatus::Approved;
    for step in &mut instance.steps {
        step.status = StepStatus::Skipped;
        step.activated_at = None;
    }

    let events = trigger_events(&instance);

    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, CallbackKind::OnApproved);
    assert_eq!(events[0].status, InstanceStatus::Approved);
    assert_eq!(events[0].step, None);
    assert_eq!(events[0].decided_by, Some(instance.initiated_by));
}

/// Three steps: 201 awaits user 1, 202 was skipped, 203 is pending (users 2 and 5).
fn with_middle_skipped() -> crate::domain::model::Instance {
    let mut instance = three_step_instance();
    instance.steps[1].status = StepStatus::Skipped;
    instance
}

#[test]
fn an_approval_activates_the_next_step_that_was_not_skipped() {
    let before = with_middle_skipped();

    let decided = decide(&before, &approve(201, 1, None), now()).unwrap();

    assert_consistent(&before, &decided);
    let after = &decided.instance;
    assert_eq!(after.status, InstanceStatus::InProgress);
    assert_eq!(after.steps[1].status, StepStatus::Skipped);
    assert_eq!(after.steps[2].status, StepStatus::AwaitingAction);
    assert_eq!(after.steps[2].activated_at, Some(now()));
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].kind, CallbackKind::StepAwaitingAction);
    assert_eq!(
        decided.callbacks[0].step.as_ref().map(|s| s.step_order),
        Some(3)
    );
    let activated: Vec<_> = decided
        .audit
        .iter()
        .filter(|a| a.action == AuditAction::StepActivated)
        .map(|a| a.step_id)
        .collect();
    assert_eq!(activated, vec![Some(before.steps[2].id)]);
}

#[test]
fn an_approval_before_only_skipped_steps_approves_the_instance() {
    let mut before = with_middle_skipped();
    before.steps[2].status = StepStatus::Skipped;

    let decided = decide(&before, &approve(201, 1, None), now()).unwrap();

    assert_consistent(&before, &decided);
    assert_eq!(decided.instance.status, InstanceStatus::Approved);
    assert_eq!(decided.instance.completed_at, Some(now()));
    assert_eq!(decided.callbacks[0].kind, CallbackKind::OnApproved);
    assert!(
        decided.instance.steps[1..]
            .iter()
            .all(|s| s.status == StepStatus::Skipped)
    );
}

#[test]
fn a_rejection_cancels_the_open_steps_and_leaves_skipped_ones_skipped() {
    let before = with_middle_skipped();

    let decided = decide(&before, &reject(201, 1, "No."), now()).unwrap();

    assert_consistent(&before, &decided);
    let statuses: Vec<_> = decided.instance.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![
            StepStatus::Rejected,
            StepStatus::Skipped,
            StepStatus::Cancelled
        ]
    );
    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
}
