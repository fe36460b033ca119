//! Tests of due dates in the state machine (domain core): `due_at` set when a step is
//! activated (at trigger, and by the decision that opens the next step), and
//! `machine::overdue` before, at and after the due time, under each `on_overdue` rule.

use chrono::{DateTime, TimeDelta, Utc};

use super::fixtures::{approve, instance, now, role, sid, template, trigger_request, uid, user};
use crate::domain::machine::{decide, overdue, trigger};
use crate::domain::model::{
    AuditAction, CallbackKind, DueIn, DueRule, Instance, InstanceStatus, OnOverdue, StepStatus,
};

fn rule(due_in: &str, on_overdue: OnOverdue) -> DueRule {
    DueRule {
        due_in: DueIn::parse(due_in).unwrap(),
        on_overdue,
    }
}

/// The fixture instance (step 101 awaiting users 1 and 4, step 102 pending) with step 101
/// activated at `now()` and due two hours later under `on_overdue`.
fn due_instance(on_overdue: OnOverdue) -> (Instance, DateTime<Utc>) {
    let mut instance = instance();
    let step = &mut instance.steps[0];
    step.activated_at = Some(now());
    step.due = Some(rule("PT2H", on_overdue));
    let due_at = now() + TimeDelta::hours(2);
    step.due_at = Some(due_at);
    (instance, due_at)
}

#[test]
fn trigger_sets_due_at_on_the_step_it_activates_only() {
    let mut template = template();
    template.steps[0].due = Some(rule("PT48H", OnOverdue::Notify));
    template.steps[1].due = Some(rule("P1D", OnOverdue::Reject));
    let new = trigger(
        &template,
        trigger_request(),
        vec![vec![uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap();
    assert_eq!(new.steps[0].due_at, Some(now() + TimeDelta::hours(48)));
    assert_eq!(new.steps[0].due, template.steps[0].due);
    // Not active yet: its clock has not started.
    assert_eq!(new.steps[1].due_at, None);
    assert_eq!(new.steps[1].due, template.steps[1].due);
}

#[test]
fn the_decision_that_activates_the_next_step_starts_its_clock() {
    let mut before = instance();
    before.steps[1].due = Some(rule("P2D", OnOverdue::Notify));
    let decided = decide(&before, &approve(101, 1, None), now()).unwrap();
    let next = &decided.instance.steps[1];
    assert_eq!(next.status, StepStatus::AwaitingAction);
    assert_eq!(next.due_at, Some(now() + TimeDelta::days(2)));
    let changed = decided.changed_steps.iter().find(|s| s.id == sid(102));
    assert_eq!(changed.and_then(|s| s.due_at), next.due_at);
}

#[test]
fn nothing_happens_before_the_due_time() {
    for on_overdue in [
        OnOverdue::Notify,
        OnOverdue::Reject,
        OnOverdue::Escalate { to: user(5) },
    ] {
        let (instance, due_at) = due_instance(on_overdue);
        let early = due_at - TimeDelta::microseconds(1);
        assert_eq!(overdue(&instance, sid(101), &[uid(5)], early), Ok(None));
    }
}

#[test]
fn notify_at_the_due_time_marks_the_step_and_emits_step_overdue_only() {
    let (before, due_at) = due_instance(OnOverdue::Notify);
    let decided = overdue(&before, sid(101), &[], due_at).unwrap().unwrap();
    let step = &decided.instance.steps[0];
    assert_eq!(step.overdue_at, Some(due_at));
    assert_eq!(step.status, StepStatus::AwaitingAction);
    assert_eq!(step.eligible_user_ids, vec![uid(1), uid(4)]);
    assert!(decided.audit.is_empty());
    assert_eq!(decided.callbacks.len(), 1);
    let event = &decided.callbacks[0];
    assert_eq!(event.kind, CallbackKind::StepOverdue);
    assert_eq!(event.decided_by, None);
    assert_eq!(event.step.as_ref().map(|s| s.id), Some(sid(101)));
    assert_eq!(decided.instance.status, InstanceStatus::InProgress);
    assert_eq!(decided.changed_steps, vec![step.clone()]);
}

#[test]
fn a_handled_step_is_not_handled_again() {
    let (before, due_at) = due_instance(OnOverdue::Notify);
    let first = overdue(&before, sid(101), &[], due_at).unwrap().unwrap();
    let later = due_at + TimeDelta::hours(1);
    assert_eq!(overdue(&first.instance, sid(101), &[], later), Ok(None));
}

#[test]
fn escalate_after_the_due_time_adds_the_active_members_and_tells_them() {
    let (before, due_at) = due_instance(OnOverdue::Escalate {
        to: role("director"),
    });
    let after = due_at + TimeDelta::seconds(3);
    // User 4 is eligible already: only 5 and 7 are added.
    let decided = overdue(&before, sid(101), &[uid(7), uid(4), uid(5)], after)
        .unwrap()
        .unwrap();
    let step = &decided.instance.steps[0];
    assert_eq!(step.eligible_user_ids, vec![uid(1), uid(4), uid(5), uid(7)]);
    assert_eq!(step.status, StepStatus::AwaitingAction);
    assert_eq!(step.overdue_at, Some(after));
    assert_eq!(decided.audit.len(), 1);
    assert_eq!(decided.audit[0].action, AuditAction::StepEscalated);
    assert_eq!(decided.audit[0].actor_user_id, None);
    assert_eq!(decided.audit[0].step_id, Some(sid(101)));
    assert_eq!(
        decided.audit[0].comment.as_deref(),
        Some("added users 5, 7")
    );
    let kinds: Vec<_> = decided.callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![CallbackKind::StepOverdue, CallbackKind::StepAwaitingAction]
    );
    // The overdue event names who was eligible; the new notification the new set.
    assert_eq!(
        decided.callbacks[0]
            .step
            .as_ref()
            .unwrap()
            .eligible_user_ids,
        vec![uid(1), uid(4)]
    );
    assert_eq!(
        decided.callbacks[1]
            .step
            .as_ref()
            .unwrap()
            .eligible_user_ids,
        vec![uid(1), uid(4), uid(5), uid(7)]
    );
}

#[test]
fn escalate_to_nobody_new_is_audited_without_a_new_notification() {
    let (before, due_at) = due_instance(OnOverdue::Escalate { to: user(4) });
    let decided = overdue(&before, sid(101), &[uid(4)], due_at)
        .unwrap()
        .unwrap();
    assert_eq!(
        decided.instance.steps[0].eligible_user_ids,
        vec![uid(1), uid(4)]
    );
    assert_eq!(decided.audit[0].action, AuditAction::StepEscalated);
    assert_eq!(decided.callbacks.len(), 1);
}

#[test]
fn escalate_never_adds_the_initiator() {
    let (before, due_at) = due_instance(OnOverdue::Escalate {
        to: role("director"),
    });
    let initiator = before.initiated_by;
    let decided = overdue(&before, sid(101), &[initiator, uid(9)], due_at)
        .unwrap()
        .unwrap();
    let eligible = &decided.instance.steps[0].eligible_user_ids;
    assert!(eligible.contains(&uid(9)));
    assert!(
        !eligible.contains(&initiator),
        "the initiator would approve their own request"
    );
    assert_eq!(decided.audit[0].comment.as_deref(), Some("added users 9"));
}

#[test]
fn reject_after_the_due_time_rejects_the_step_and_the_instance_as_the_system() {
    let (before, due_at) = due_instance(OnOverdue::Reject);
    let after = due_at + TimeDelta::minutes(1);
    let decided = overdue(&before, sid(101), &[], after).unwrap().unwrap();
    let instance = &decided.instance;
    assert_eq!(instance.status, InstanceStatus::Rejected);
    assert_eq!(instance.completed_at, Some(after));
    let step = &instance.steps[0];
    assert_eq!(step.status, StepStatus::Rejected);
    assert_eq!(step.acted_by_user_id, None);
    assert_eq!(step.comment.as_deref(), Some("overdue"));
    assert_eq!(instance.steps[1].status, StepStatus::Cancelled);
    let audit: Vec<_> = decided
        .audit
        .iter()
        .map(|a| (a.action, a.actor_user_id, a.comment.as_deref()))
        .collect();
    assert_eq!(
        audit,
        vec![
            (AuditAction::StepRejected, None, Some("overdue")),
            (AuditAction::InstanceRejected, None, Some("overdue")),
        ]
    );
    let kinds: Vec<_> = decided.callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![CallbackKind::StepOverdue, CallbackKind::OnRejected]
    );
    assert!(decided.callbacks.iter().all(|c| c.decided_by.is_none()));
    assert_eq!(decided.changed_steps.len(), 2);
}

#[test]
fn a_step_no_longer_awaiting_or_without_a_due_date_is_left_alone() {
    let (mut decided_already, due_at) = due_instance(OnOverdue::Reject);
    decided_already.steps[0].status = StepStatus::Approved;
    assert_eq!(overdue(&decided_already, sid(101), &[], due_at), Ok(None));

    let (mut cancelled, _) = due_instance(OnOverdue::Reject);
    cancelled.status = InstanceStatus::Cancelled;
    assert_eq!(overdue(&cancelled, sid(101), &[], due_at), Ok(None));

    assert_eq!(overdue(&instance(), sid(101), &[], due_at), Ok(None));
    assert!(overdue(&instance(), sid(999), &[], due_at).is_err());
}
