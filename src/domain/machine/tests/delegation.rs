//! Tests of delegation in the state machine (domain core): a delegate deciding for an eligible
//! delegator while the delegation runs, judged at the decision's time, never transitively, and
//! counted as the delegator's approval on a quorum step.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::{
    approve, assert_consistent, assert_validation, comment, instance, now, reject, uid,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{decide_as, validate_delegation};
use crate::domain::model::{
    AuditAction, Delegation, Instance, InstanceStatus, StepApproval, StepStatus,
};

/// `from` lets `to` act for them until `until`.
fn delegation(from: i64, to: i64, until: DateTime<Utc>) -> Delegation {
    Delegation {
        user_id: uid(from),
        to_user_id: uid(to),
        until,
        reason: Some(comment("Holiday")),
        created_at: now() - Duration::days(1),
    }
}

fn running(from: i64, to: i64) -> Delegation {
    delegation(from, to, now() + Duration::hours(1))
}

/// Step 101 of [`instance`] (users 1 and 4) needing `quorum` approvals.
fn with_quorum(quorum: u32) -> Instance {
    let mut instance = instance();
    instance.steps[0].quorum = quorum;
    instance
}

#[test]
fn a_delegate_decides_for_an_eligible_delegator_and_the_audit_names_both() {
    let instance = instance();
    let decided = decide_as(
        &instance,
        &approve(101, 9, Some("for Ann")),
        Some(true),
        &[running(1, 9)],
        now(),
    )
    .unwrap();

    let step = &decided.instance.steps[0];
    assert_eq!(step.status, StepStatus::Approved);
    assert_eq!(step.acted_by_user_id, Some(uid(9)), "the delegate acted");
    assert_eq!(
        step.approvals,
        vec![StepApproval {
            user_id: uid(1),
            comment: Some("for Ann".to_owned()),
            at: now(),
            acted_by: Some(uid(9)),
        }],
        "the approval is the delegator's, the delegate noted"
    );
    let approved = &decided.audit[0];
    assert_eq!(approved.action, AuditAction::StepApproved);
    assert_eq!(approved.actor_user_id, Some(uid(9)));
    assert_eq!(approved.on_behalf_of, Some(uid(1)));
    // The next step's activation has no actor, so no one acted on anyone's behalf.
    assert_eq!(decided.audit[1].action, AuditAction::StepActivated);
    assert_eq!(decided.audit[1].on_behalf_of, None);
    assert_eq!(decided.callbacks[0].decided_by, Some(uid(9)));
    assert_consistent(&instance, &decided);
}

#[test]
fn a_delegate_never_acts_for_anyone_on_a_request_they_initiated() {
    let mut instance = instance();
    instance.initiated_by = uid(9);
    let refused = decide_as(
        &instance,
        &approve(101, 9, None),
        Some(true),
        &[running(1, 9)],
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(refused, WorkflowError::NotAnApprover { .. }),
        "{refused:?}"
    );
}

#[test]
fn a_delegates_rejection_names_the_delegator_on_every_entry_with_an_actor() {
    let decided = decide_as(
        &instance(),
        &reject(101, 9, "No."),
        Some(true),
        &[running(4, 9)],
        now(),
    )
    .unwrap();
    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
    let named: Vec<_> = decided
        .audit
        .iter()
        .map(|a| (a.action, a.actor_user_id, a.on_behalf_of))
        .collect();
    assert_eq!(
        named,
        vec![
            (AuditAction::StepRejected, Some(uid(9)), Some(uid(4))),
            (AuditAction::InstanceRejected, Some(uid(9)), Some(uid(4))),
        ]
    );
}

#[test]
fn a_delegation_counts_only_while_it_runs() {
    let request = approve(101, 9, None);
    // Ended exactly now (until is exclusive), or an hour ago: the delegate is no approver.
    for until in [now(), now() - Duration::hours(1)] {
        let err = decide_as(
            &instance(),
            &request,
            Some(true),
            &[delegation(1, 9, until)],
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            WorkflowError::NotAnApprover {
                user: uid(9),
                step: 101
            },
            "until {until}"
        );
    }
    // A microsecond before its end it still runs.
    let last_moment = now() + Duration::microseconds(1);
    assert!(
        decide_as(
            &instance(),
            &request,
            Some(true),
            &[delegation(1, 9, last_moment)],
            now(),
        )
        .is_ok()
    );
}

#[test]
fn delegation_is_not_transitive() {
    // User 1 delegates to 7, and 7 to 9: 9 may act for 7 (not eligible here), never for 1.
    let err = decide_as(
        &instance(),
        &approve(101, 9, None),
        Some(true),
        &[running(7, 9)],
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, WorkflowError::NotAnApprover { .. }),
        "{err:?}"
    );
}

#[test]
fn a_delegation_to_someone_else_lends_nothing() {
    let err = decide_as(
        &instance(),
        &approve(101, 9, None),
        Some(true),
        &[running(1, 8)],
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, WorkflowError::NotAnApprover { .. }),
        "{err:?}"
    );
}

#[test]
fn an_eligible_delegate_acts_as_themself() {
    let decided = decide_as(
        &with_quorum(2),
        &approve(101, 4, None),
        Some(true),
        &[running(1, 4)],
        now(),
    )
    .unwrap();
    assert_eq!(decided.instance.steps[0].approvals[0].user_id, uid(4));
    assert_eq!(decided.instance.steps[0].approvals[0].acted_by, None);
    assert_eq!(decided.audit[0].actor_user_id, Some(uid(4)));
    assert_eq!(decided.audit[0].on_behalf_of, None);
}

#[test]
fn an_inactive_delegate_is_refused_as_any_inactive_actor() {
    let err = decide_as(
        &instance(),
        &approve(101, 9, None),
        Some(false),
        &[running(1, 9)],
        now(),
    )
    .unwrap_err();
    assert_eq!(err, WorkflowError::UserInactive { user: uid(9) });
}

#[test]
fn on_a_quorum_step_a_delegates_approval_is_the_delegators_and_counts_once() {
    let instance = with_quorum(2);
    let delegations = [running(1, 9)];
    let decided = decide_as(
        &instance,
        &approve(101, 9, None),
        Some(true),
        &delegations,
        now(),
    )
    .unwrap();
    let step = &decided.instance.steps[0];
    assert_eq!(step.status, StepStatus::AwaitingAction);
    assert_eq!(step.approvals.len(), 1);
    assert_eq!(step.approvals[0].user_id, uid(1));
    assert_eq!(step.approvals[0].acted_by, Some(uid(9)));
    assert_eq!(decided.audit[0].action, AuditAction::ApprovalRecorded);
    assert_eq!(decided.audit[0].on_behalf_of, Some(uid(1)));
    assert_consistent(&instance, &decided);

    // The delegator can't approve again, nor the delegate for them.
    let after = decided.instance;
    for (actor, delegations) in [(1, &[][..]), (9, &delegations[..])] {
        let err = decide_as(
            &after,
            &approve(101, actor, None),
            Some(true),
            delegations,
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            WorkflowError::AlreadyApproved {
                user: uid(1),
                step: 101
            },
            "actor {actor}"
        );
    }
    // The other eligible user reaches the quorum.
    let done = decide_as(&after, &approve(101, 4, None), Some(true), &[], now()).unwrap();
    assert_eq!(done.instance.steps[0].status, StepStatus::Approved);
}

#[test]
fn of_several_delegators_the_lowest_is_chosen_and_the_delegate_approves_once() {
    let instance = with_quorum(2);
    // Users 4 and 1 both delegate to 9; given in any order, 1 is chosen.
    let delegations = [running(4, 9), running(1, 9)];
    let first = decide_as(
        &instance,
        &approve(101, 9, None),
        Some(true),
        &delegations,
        now(),
    )
    .unwrap();
    assert_eq!(first.audit[0].on_behalf_of, Some(uid(1)));
    // A second approval by the same person, for user 4, would let one person meet a quorum
    // of two.
    let refused = decide_as(
        &first.instance,
        &approve(101, 9, None),
        Some(true),
        &delegations,
        now(),
    )
    .unwrap_err();
    assert_eq!(
        refused,
        WorkflowError::AlreadyApproved {
            user: uid(9),
            step: 101
        }
    );
    // User 4 may still approve as themself.
    let second = decide_as(
        &first.instance,
        &approve(101, 4, None),
        Some(true),
        &delegations,
        now(),
    )
    .unwrap();
    assert_eq!(second.instance.steps[0].status, StepStatus::Approved);
}

#[test]
fn a_delegation_must_end_in_the_future_and_go_to_another_user() {
    assert_eq!(validate_delegation(&running(1, 9), now()), Ok(()));
    assert_validation(
        validate_delegation(&delegation(1, 9, now()), now()).unwrap_err(),
        "until",
    );
    assert_validation(
        validate_delegation(&delegation(1, 9, now() - Duration::days(1)), now()).unwrap_err(),
        "until",
    );
    assert_validation(
        validate_delegation(&running(9, 9), now()).unwrap_err(),
        "to_user_id",
    );
}
