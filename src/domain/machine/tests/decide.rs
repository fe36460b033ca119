//! Tests of `machine::decide` when the decision is allowed (domain core): the instance it
//! leaves, the steps and audit the store must write, and the callbacks it queues.

use super::fixtures::{
    approve, assert_consistent, assert_validation, decision_audit, earlier, instance,
    instance_at_last_step, now, reject, sid, three_step_instance, uid,
};
use crate::domain::machine::decide;
use crate::domain::model::{
    AuditAction, CallbackEvent, CallbackKind, Comment, EntityId, EntityType, EventName, EventStep,
    InstanceId, InstanceStatus, StepApproval, StepStatus,
};

// ----- approve -----

#[test]
fn approving_step_one_of_two_activates_step_two() {
    let instance = instance();

    let decided = decide(&instance, &approve(101, 4, Some("looks fine")), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::InProgress);
    assert_eq!(decided.instance.updated_at, now());
    assert_eq!(decided.instance.completed_at, None);
    // Step two's approvers are told it awaits them: its snapshot, caused by the approver.
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::StepAwaitingAction,
            instance_id: instance.id,
            event: instance.event.clone(),
            entity_type: instance.entity_type.clone(),
            entity_id: instance.entity_id,
            status: InstanceStatus::InProgress,
            step: Some(EventStep::of(&decided.instance.steps[1])),
            decided_by: Some(uid(4)),
            comment: None,
            at: now(),
        }]
    );
    assert_eq!(
        decided.callbacks[0]
            .step
            .as_ref()
            .unwrap()
            .eligible_user_ids,
        instance.steps[1].eligible_user_ids
    );

    let mut approved = instance.steps[0].clone();
    approved.status = StepStatus::Approved;
    approved.acted_by_user_id = Some(uid(4));
    approved.acted_at = Some(now());
    approved.comment = Some("looks fine".to_owned());
    approved.approvals = vec![StepApproval {
        user_id: uid(4),
        comment: Some("looks fine".to_owned()),
        at: now(),
        acted_by: None,
    }];
    let mut activated = instance.steps[1].clone();
    activated.status = StepStatus::AwaitingAction;
    activated.activated_at = Some(now());
    assert_eq!(decided.changed_steps, vec![approved, activated]);
    assert_eq!(decided.instance.steps, decided.changed_steps);
    assert_consistent(&instance, &decided);

    assert_eq!(
        decided.audit,
        vec![
            decision_audit(
                Some(101),
                AuditAction::StepApproved,
                Some(4),
                Some("looks fine")
            ),
            decision_audit(Some(102), AuditAction::StepActivated, None, None),
        ]
    );
}

#[test]
fn approving_without_a_comment_records_none() {
    let instance = instance();

    let decided = decide(&instance, &approve(101, 1, None), now()).unwrap();

    assert_eq!(decided.changed_steps[0].comment, None);
    assert_eq!(decided.instance.steps[0].comment, None);
    assert_eq!(
        decided.audit[0],
        decision_audit(Some(101), AuditAction::StepApproved, Some(1), None)
    );
    assert_consistent(&instance, &decided);
}

#[test]
fn approving_the_last_step_approves_the_instance() {
    let instance = instance_at_last_step();

    let decided = decide(&instance, &approve(102, 2, Some("ok")), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::Approved);
    assert_eq!(decided.instance.updated_at, now());
    assert_eq!(decided.instance.completed_at, Some(now()));

    let mut approved = instance.steps[1].clone();
    approved.status = StepStatus::Approved;
    approved.acted_by_user_id = Some(uid(2));
    approved.acted_at = Some(now());
    approved.comment = Some("ok".to_owned());
    approved.approvals = vec![StepApproval {
        user_id: uid(2),
        comment: Some("ok".to_owned()),
        at: now(),
        acted_by: None,
    }];
    assert_eq!(decided.changed_steps, vec![approved.clone()]);
    assert_eq!(
        decided.instance.steps,
        vec![instance.steps[0].clone(), approved]
    );
    assert_consistent(&instance, &decided);

    assert_eq!(
        decided.audit,
        vec![
            decision_audit(Some(102), AuditAction::StepApproved, Some(2), Some("ok")),
            decision_audit(None, AuditAction::InstanceApproved, Some(2), None),
        ]
    );
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::OnApproved,
            instance_id: InstanceId::new(10).unwrap(),
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(42).unwrap(),
            status: InstanceStatus::Approved,
            step: None,
            decided_by: Some(uid(2)),
            comment: Some("ok".to_owned()),
            at: now(),
        }]
    );
}

// ----- reject -----

#[test]
fn rejecting_a_step_cancels_later_steps_and_rejects_the_instance() {
    let instance = three_step_instance();

    let decided = decide(&instance, &reject(201, 1, "price too low"), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
    assert_eq!(decided.instance.updated_at, now());
    assert_eq!(decided.instance.completed_at, Some(now()));

    let mut rejected = instance.steps[0].clone();
    rejected.status = StepStatus::Rejected;
    rejected.acted_by_user_id = Some(uid(1));
    rejected.acted_at = Some(now());
    rejected.comment = Some("price too low".to_owned());
    let mut second = instance.steps[1].clone();
    second.status = StepStatus::Cancelled;
    let mut third = instance.steps[2].clone();
    third.status = StepStatus::Cancelled;
    assert_eq!(decided.changed_steps, vec![rejected, second, third]);
    assert_eq!(decided.instance.steps, decided.changed_steps);
    assert_consistent(&instance, &decided);

    assert_eq!(
        decided.audit,
        vec![
            decision_audit(
                Some(201),
                AuditAction::StepRejected,
                Some(1),
                Some("price too low")
            ),
            decision_audit(None, AuditAction::InstanceRejected, Some(1), None),
        ]
    );
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: InstanceId::new(10).unwrap(),
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(42).unwrap(),
            status: InstanceStatus::Rejected,
            step: None,
            decided_by: Some(uid(1)),
            comment: Some("price too low".to_owned()),
            at: now(),
        }]
    );
}

#[test]
fn rejecting_the_last_step_cancels_nothing() {
    let instance = instance_at_last_step();

    let decided = decide(&instance, &reject(102, 2, "no budget"), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
    assert_eq!(decided.changed_steps.len(), 1);
    assert_eq!(decided.changed_steps[0].id, sid(102));
    assert_eq!(decided.changed_steps[0].status, StepStatus::Rejected);
    assert_eq!(decided.instance.steps[0], instance.steps[0]);
    assert_eq!(decided.instance.steps[1], decided.changed_steps[0]);
    assert_consistent(&instance, &decided);
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].kind, CallbackKind::OnRejected);
    assert_eq!(decided.callbacks[0].comment.as_deref(), Some("no budget"));
}

#[test]
fn a_blank_comment_is_refused_so_a_reject_always_has_a_reason() {
    // `Verdict::Reject` holds a `Comment`, so an empty reason can only be refused here.
    assert_validation(Comment::new("").unwrap_err(), "comment");
    assert_validation(Comment::new("   ").unwrap_err(), "comment");
    assert_validation(Comment::new("\n\t ").unwrap_err(), "comment");
    assert_eq!(Comment::new(" why ").unwrap().as_str(), " why ");
}

// ----- the instance a decision leaves (what `apply` used to rebuild) -----

#[test]
fn the_decided_instance_updates_status_timestamps_and_changed_steps_only() {
    let instance = instance();

    let decided = decide(&instance, &approve(101, 1, Some("fine")), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::InProgress);
    assert_eq!(decided.instance.updated_at, now());
    assert_eq!(decided.instance.completed_at, None);
    assert_eq!(decided.instance.created_at, earlier());
    assert_eq!(decided.instance.steps, decided.changed_steps);
    // Audit ids are assigned by the repository, so the decided instance leaves the log alone.
    assert_eq!(decided.instance.audit.len(), 1);
    assert_eq!(decided.instance.audit, instance.audit);
    assert_consistent(&instance, &decided);
}

#[test]
fn the_decided_instance_ends_on_a_final_decision() {
    let instance = three_step_instance();
    let untouched_first = instance.steps[0].clone();

    let decided = decide(&instance, &reject(201, 1, "no"), now()).unwrap();

    let after = &decided.instance;
    assert_eq!(after.status, InstanceStatus::Rejected);
    assert_eq!(after.updated_at, now());
    assert_eq!(after.completed_at, Some(now()));
    assert_eq!(
        after.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![
            StepStatus::Rejected,
            StepStatus::Cancelled,
            StepStatus::Cancelled
        ]
    );
    assert_eq!(after.steps[0].id, untouched_first.id);
    assert_eq!(after.steps[0].comment.as_deref(), Some("no"));
    assert_eq!(after.steps, decided.changed_steps);
    assert_consistent(&instance, &decided);
}

#[test]
fn a_two_step_instance_runs_to_approval() {
    let start = instance();

    let first = decide(&start, &approve(101, 4, None), now()).unwrap();
    assert_consistent(&start, &first);
    let second = decide(&first.instance, &approve(102, 2, None), now()).unwrap();
    assert_consistent(&first.instance, &second);

    let instance = &second.instance;
    assert_eq!(instance.status, InstanceStatus::Approved);
    assert_eq!(instance.completed_at, Some(now()));
    assert!(
        instance
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Approved)
    );
    assert_eq!(instance.steps[0], first.changed_steps[0]);
    assert_eq!(second.changed_steps, vec![instance.steps[1].clone()]);
    assert_eq!(second.callbacks.len(), 1);
    assert_eq!(second.callbacks[0].kind, CallbackKind::OnApproved);
    assert_eq!(second.callbacks[0].comment, None);
}
