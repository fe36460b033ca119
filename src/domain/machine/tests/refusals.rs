//! Tests of `machine::decide` refusing a decision (domain core): who may act, on which step,
//! and when; a refusal never yields anything to write.

use super::fixtures::{
    approve, assert_not_actionable, instance, instance_at_last_step, now, reject,
    three_step_instance, uid,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::decide;
use crate::domain::model::{InstanceStatus, StepStatus};

#[test]
fn deciding_as_a_user_outside_the_snapshot_is_refused() {
    let err = decide(&instance(), &approve(101, 2, None), now()).unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: 101,
        }
    );

    let err = decide(&instance(), &reject(101, 3, "no"), now()).unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(3),
            step: 101,
        }
    );
}

#[test]
fn deciding_a_pending_step_is_refused() {
    let err = decide(&instance(), &approve(102, 2, None), now()).unwrap_err();
    assert_not_actionable(err, 102, StepStatus::Pending);

    let err = decide(&instance(), &reject(102, 2, "too early"), now()).unwrap_err();
    assert_not_actionable(err, 102, StepStatus::Pending);
}

#[test]
fn deciding_an_already_approved_step_is_refused() {
    let instance = instance_at_last_step();

    let err = decide(&instance, &approve(101, 1, None), now()).unwrap_err();
    assert_not_actionable(err, 101, StepStatus::Approved);

    let err = decide(&instance, &reject(101, 1, "changed my mind"), now()).unwrap_err();
    assert_not_actionable(err, 101, StepStatus::Approved);
}

#[test]
fn deciding_the_same_step_twice_is_refused_the_second_time() {
    let instance = decide(&instance(), &approve(101, 1, None), now())
        .unwrap()
        .instance;

    let err = decide(&instance, &approve(101, 4, None), now()).unwrap_err();

    assert_not_actionable(err, 101, StepStatus::Approved);
}

#[test]
fn deciding_a_step_cancelled_by_a_rejection_is_refused() {
    let instance = decide(&three_step_instance(), &reject(201, 1, "no"), now())
        .unwrap()
        .instance;

    let err = decide(&instance, &approve(202, 2, None), now()).unwrap_err();
    assert_not_actionable(err, 202, StepStatus::Cancelled);

    let err = decide(&instance, &reject(203, 5, "no"), now()).unwrap_err();
    assert_not_actionable(err, 203, StepStatus::Cancelled);

    let err = decide(&instance, &approve(201, 1, None), now()).unwrap_err();
    assert_not_actionable(err, 201, StepStatus::Rejected);
}

#[test]
fn deciding_an_awaiting_step_of_an_ended_instance_is_refused() {
    for ended in [
        InstanceStatus::Rejected,
        InstanceStatus::Approved,
        InstanceStatus::Cancelled,
    ] {
        let mut instance = instance();
        instance.status = ended;

        let err = decide(&instance, &approve(101, 1, None), now()).unwrap_err();

        assert_not_actionable(err, 101, StepStatus::AwaitingAction);
    }
}

#[test]
fn deciding_a_step_of_a_pending_instance_is_refused() {
    let mut instance = instance();
    instance.status = InstanceStatus::Pending;

    let err = decide(&instance, &reject(101, 1, "no"), now()).unwrap_err();

    assert_not_actionable(err, 101, StepStatus::AwaitingAction);
}

#[test]
fn deciding_a_step_of_another_instance_is_not_found() {
    let err = decide(&instance(), &approve(999, 1, None), now()).unwrap_err();

    assert_eq!(err, WorkflowError::not_found("step 999"));
}
