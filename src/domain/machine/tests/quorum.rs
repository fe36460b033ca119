//! Tests of quorum steps in the state machine (domain core): a step that needs several distinct
//! approvals, resolved at trigger, counted at each decision, refused for a repeat.

use super::fixtures::{
    approve, assert_consistent, assert_validation, decision_audit, instance, now, reject, role,
    template, template_step, trigger_request, uid, user,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{decide, trigger, validate_template_steps};
use crate::domain::model::{
    AuditAction, Instance, InstanceStatus, Quorum, StepApproval, StepStatus,
};

/// [`instance`] with step 101 (role, users 1, 4, 5 and 6) needing `quorum` approvals.
fn quorum_instance(quorum: u32) -> Instance {
    let mut instance = instance();
    instance.steps[0].eligible_user_ids = vec![uid(1), uid(4), uid(5), uid(6)];
    instance.steps[0].quorum = quorum;
    instance
}

fn approval(by: i64, comment: Option<&str>) -> StepApproval {
    StepApproval {
        user_id: uid(by),
        comment: comment.map(str::to_owned),
        at: now(),
        acted_by: None,
    }
}

#[test]
fn an_approval_short_of_the_quorum_is_recorded_and_the_step_keeps_waiting() {
    let instance = quorum_instance(2);

    let decided = decide(&instance, &approve(101, 4, Some("fine by me")), now()).unwrap();

    let step = &decided.instance.steps[0];
    assert_eq!(step.status, StepStatus::AwaitingAction);
    assert_eq!(step.approvals, vec![approval(4, Some("fine by me"))]);
    assert_eq!(step.acted_by_user_id, None);
    assert_eq!(decided.instance.steps[1].status, StepStatus::Pending);
    assert_eq!(decided.instance.status, InstanceStatus::InProgress);
    assert_eq!(decided.instance.updated_at, now());
    assert_eq!(decided.changed_steps, vec![step.clone()]);
    assert!(decided.callbacks.is_empty());
    assert_eq!(
        decided.audit,
        vec![decision_audit(
            Some(101),
            AuditAction::ApprovalRecorded,
            Some(4),
            Some("fine by me")
        )]
    );
    assert_consistent(&instance, &decided);
}

#[test]
fn the_approval_that_reaches_the_quorum_approves_the_step_and_activates_the_next() {
    let mut instance = quorum_instance(2);
    instance.steps[0].approvals = vec![approval(4, None)];

    let decided = decide(&instance, &approve(101, 1, Some("second")), now()).unwrap();

    let step = &decided.instance.steps[0];
    assert_eq!(step.status, StepStatus::Approved);
    assert_eq!(step.acted_by_user_id, Some(uid(1)));
    assert_eq!(step.comment.as_deref(), Some("second"));
    assert_eq!(
        step.approvals,
        vec![approval(4, None), approval(1, Some("second"))]
    );
    assert_eq!(decided.instance.steps[1].status, StepStatus::AwaitingAction);
    assert_eq!(
        decided.audit,
        vec![
            decision_audit(
                Some(101),
                AuditAction::ApprovalRecorded,
                Some(1),
                Some("second")
            ),
            decision_audit(
                Some(101),
                AuditAction::StepApproved,
                Some(1),
                Some("second")
            ),
            decision_audit(Some(102), AuditAction::StepActivated, None, None),
        ]
    );
    assert_consistent(&instance, &decided);
}

#[test]
fn a_user_who_approved_is_refused_a_second_approval_and_a_rejection() {
    let mut instance = quorum_instance(3);
    instance.steps[0].approvals = vec![approval(4, None)];

    for request in [approve(101, 4, None), reject(101, 4, "changed my mind")] {
        assert_eq!(
            decide(&instance, &request, now()),
            Err(WorkflowError::AlreadyApproved {
                user: uid(4),
                step: 101
            })
        );
    }
}

#[test]
fn one_rejection_rejects_a_quorum_step_whatever_was_approved() {
    let mut instance = quorum_instance(3);
    instance.steps[0].approvals = vec![approval(4, None), approval(5, None)];

    let decided = decide(&instance, &reject(101, 6, "too expensive"), now()).unwrap();

    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
    let step = &decided.instance.steps[0];
    assert_eq!(step.status, StepStatus::Rejected);
    assert_eq!(step.acted_by_user_id, Some(uid(6)));
    assert_eq!(
        step.approvals.len(),
        2,
        "the approvals given stay on the step"
    );
    assert_eq!(decided.instance.steps[1].status, StepStatus::Cancelled);
    assert_eq!(decided.audit[0].action, AuditAction::StepRejected);
    assert_consistent(&instance, &decided);
}

#[test]
fn a_plain_step_records_its_one_approval_without_an_approval_recorded_entry() {
    let instance = instance();

    let decided = decide(&instance, &approve(101, 1, None), now()).unwrap();

    assert_eq!(decided.instance.steps[0].approvals, vec![approval(1, None)]);
    assert!(
        decided
            .audit
            .iter()
            .all(|a| a.action != AuditAction::ApprovalRecorded)
    );
}

#[test]
fn trigger_resolves_the_quorum_against_the_snapshot() {
    let mut template = template();
    template.steps[0].quorum = Quorum::All;
    let new = trigger(
        &template,
        trigger_request(),
        vec![vec![uid(1), uid(4), uid(5)], vec![uid(2)]],
        now(),
    )
    .unwrap();
    assert_eq!(new.steps[0].quorum, 3);
    assert_eq!(new.steps[1].quorum, 1);

    template.steps[0].quorum = Quorum::Count(2);
    let new = trigger(
        &template,
        trigger_request(),
        vec![vec![uid(1), uid(4), uid(5)], vec![uid(2)]],
        now(),
    )
    .unwrap();
    assert_eq!(new.steps[0].quorum, 2);
}

#[test]
fn a_quorum_larger_than_the_snapshot_is_no_eligible_approver() {
    let mut template = template();
    template.steps[0].quorum = Quorum::Count(3);

    let err = trigger(
        &template,
        trigger_request(),
        // Duplicates count once.
        vec![vec![uid(1), uid(4), uid(4)], vec![uid(2)]],
        now(),
    )
    .unwrap_err();

    match err {
        WorkflowError::QuorumOutOfReach {
            step_order,
            required,
            eligible,
            ..
        } => {
            assert_eq!((step_order, required, eligible), (1, 3, 2));
        }
        other => panic!("expected QuorumOutOfReach, got {other:?}"),
    }
}

#[test]
fn template_quorums_are_checked_at_save() {
    let mut steps = vec![
        template_step(1, "Board", role("board")),
        template_step(2, "Owner", user(2)),
    ];
    assert!(validate_template_steps(&steps).is_ok());

    steps[0].quorum = Quorum::Count(0);
    assert_validation(
        validate_template_steps(&steps).unwrap_err(),
        "steps[0].quorum",
    );
    steps[0].quorum = Quorum::Count(1001);
    assert_validation(
        validate_template_steps(&steps).unwrap_err(),
        "steps[0].quorum",
    );
    steps[0].quorum = Quorum::Count(1000);
    assert!(validate_template_steps(&steps).is_ok());

    // One named user can give one approval; "all" of one user is that one.
    steps[1].quorum = Quorum::Count(2);
    assert_validation(
        validate_template_steps(&steps).unwrap_err(),
        "steps[1].quorum",
    );
    steps[1].quorum = Quorum::All;
    assert!(validate_template_steps(&steps).is_ok());
}
