//! Tests of `machine::cancel` (domain core, pure): who may cancel, when, and what a cancellation
//! writes (the open steps cancelled, one audit entry, one `on_cancelled` callback).

use super::fixtures::{
    assert_consistent, comment, decision_audit, instance, instance_at_last_step, now, reject,
    three_step_instance, uid,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{cancel, decide};
use crate::domain::model::{
    AuditAction, CallbackEvent, CallbackKind, CancelRequest, Instance, InstanceId, InstanceStatus,
    StepStatus,
};

fn request(by: i64, reason: Option<&str>) -> CancelRequest {
    CancelRequest {
        instance_id: InstanceId::new(10).unwrap(),
        acted_by: uid(by),
        reason: reason.map(comment),
    }
}

fn statuses(instance: &Instance) -> Vec<StepStatus> {
    instance.steps.iter().map(|s| s.status).collect()
}

#[test]
fn cancelling_at_the_first_step_cancels_every_step() {
    let before = instance();

    let decided = cancel(&before, &request(3, Some("Customer changed plans")), now()).unwrap();

    assert_consistent(&before, &decided);
    let after = &decided.instance;
    assert_eq!(after.status, InstanceStatus::Cancelled);
    assert_eq!(after.updated_at, now());
    assert_eq!(after.completed_at, Some(now()));
    assert_eq!(
        statuses(after),
        vec![StepStatus::Cancelled, StepStatus::Cancelled]
    );
    let changed: Vec<i64> = decided.changed_steps.iter().map(|s| s.id.get()).collect();
    assert_eq!(changed, vec![101, 102]);
    // A cancelled step was decided by nobody: only its status changes.
    for (old, new) in before.steps.iter().zip(&after.steps) {
        assert_eq!(new.acted_by_user_id, old.acted_by_user_id);
        assert_eq!(new.acted_at, old.acted_at);
        assert_eq!(new.comment, old.comment);
        assert_eq!(new.activated_at, old.activated_at);
    }
    assert_eq!(
        decided.audit,
        vec![decision_audit(
            None,
            AuditAction::InstanceCancelled,
            Some(3),
            Some("Customer changed plans"),
        )]
    );
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::OnCancelled,
            instance_id: before.id,
            event: before.event.clone(),
            entity_type: before.entity_type.clone(),
            entity_id: before.entity_id,
            status: InstanceStatus::Cancelled,
            step: None,
            decided_by: Some(uid(3)),
            comment: Some("Customer changed plans".to_owned()),
            at: now(),
        }]
    );
}

#[test]
fn cancelling_at_a_later_step_keeps_the_decided_steps() {
    let before = instance_at_last_step();

    let decided = cancel(&before, &request(3, None), now()).unwrap();

    assert_consistent(&before, &decided);
    assert_eq!(
        statuses(&decided.instance),
        vec![StepStatus::Approved, StepStatus::Cancelled]
    );
    assert_eq!(decided.instance.steps[0], before.steps[0]);
    let changed: Vec<i64> = decided.changed_steps.iter().map(|s| s.id.get()).collect();
    assert_eq!(changed, vec![102]);
}

#[test]
fn every_open_step_of_a_longer_instance_is_cancelled() {
    let before = three_step_instance();

    let decided = cancel(&before, &request(3, None), now()).unwrap();

    assert_consistent(&before, &decided);
    assert_eq!(statuses(&decided.instance), vec![StepStatus::Cancelled; 3]);
    assert_eq!(decided.changed_steps.len(), 3);
}

#[test]
fn a_pending_instance_can_be_cancelled() {
    let mut before = instance();
    before.status = InstanceStatus::Pending;

    let decided = cancel(&before, &request(3, None), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::Cancelled);
}

#[test]
fn without_a_reason_the_audit_and_the_callback_have_no_comment() {
    let decided = cancel(&instance(), &request(3, None), now()).unwrap();

    assert_eq!(
        decided.audit,
        vec![decision_audit(
            None,
            AuditAction::InstanceCancelled,
            Some(3),
            None
        )]
    );
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].comment, None);
    assert_eq!(decided.callbacks[0].decided_by, Some(uid(3)));
}

#[test]
fn only_the_initiator_may_cancel() {
    // User 1 is an approver of step 101, which is not enough; user 2 approves step 102.
    for by in [1, 2, 4] {
        let err = cancel(&instance(), &request(by, Some("no")), now()).unwrap_err();
        assert_eq!(
            err,
            WorkflowError::NotTheInitiator {
                user: uid(by),
                instance: 10,
            }
        );
    }
}

#[test]
fn an_ended_instance_cannot_be_cancelled() {
    let mut approved = instance_at_last_step();
    approved.status = InstanceStatus::Approved;
    let rejected = decide(&instance(), &reject(101, 1, "no"), now())
        .unwrap()
        .instance;
    let cancelled = cancel(&instance(), &request(3, None), now())
        .unwrap()
        .instance;

    for ended in [approved, rejected, cancelled] {
        let status = ended.status;
        let err = cancel(&ended, &request(3, Some("again")), now()).unwrap_err();
        assert_eq!(
            err,
            WorkflowError::InstanceNotActive {
                instance: 10,
                status,
            }
        );
        // Who may act is checked first, as for a decision.
        let err = cancel(&ended, &request(1, None), now()).unwrap_err();
        assert_eq!(
            err,
            WorkflowError::NotTheInitiator {
                user: uid(1),
                instance: 10,
            }
        );
    }
}

#[test]
fn another_instance_than_the_one_asked_for_is_a_bug() {
    let mut request = request(3, None);
    request.instance_id = InstanceId::new(11).unwrap();

    let err = cancel(&instance(), &request, now()).unwrap_err();

    assert!(matches!(err, WorkflowError::Internal { .. }), "{err:?}");
}
