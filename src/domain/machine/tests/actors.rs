//! Tests of `machine::decide_as` (domain core): the directory's answer about the actor, put in
//! its place in the refusal order (unknown step, inactive actor, not in the snapshot, not
//! actionable); an active actor decides exactly as `decide` would.

use super::fixtures::{approve, assert_not_actionable, instance, now, reject, uid};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{decide, decide_as};
use crate::domain::model::StepStatus;

#[test]
fn an_active_actor_decides_as_the_machine_does() {
    let request = approve(101, 4, Some("fine"));
    assert_eq!(
        decide_as(&instance(), &request, Some(true), &[], now()),
        decide(&instance(), &request, now())
    );
    let request = reject(101, 1, "no");
    assert_eq!(
        decide_as(&instance(), &request, Some(true), &[], now()),
        decide(&instance(), &request, now())
    );
}

#[test]
fn an_inactive_actor_is_refused_even_though_the_snapshot_holds_it() {
    // Step 101's snapshot holds users 1 and 4.
    for request in [approve(101, 4, None), reject(101, 1, "no")] {
        let err = decide_as(&instance(), &request, Some(false), &[], now()).unwrap_err();
        assert_eq!(
            err,
            WorkflowError::UserInactive {
                user: request.acted_by
            }
        );
    }
}

#[test]
fn inactive_comes_before_not_eligible_and_not_actionable() {
    // User 2 is not in step 101's snapshot, and step 102 is not reached yet.
    let err = decide_as(&instance(), &approve(101, 2, None), Some(false), &[], now()).unwrap_err();
    assert_eq!(err, WorkflowError::UserInactive { user: uid(2) });
    let err = decide_as(&instance(), &approve(102, 2, None), Some(false), &[], now()).unwrap_err();
    assert_eq!(err, WorkflowError::UserInactive { user: uid(2) });
}

#[test]
fn an_unknown_step_comes_before_inactive() {
    let err = decide_as(&instance(), &approve(999, 4, None), Some(false), &[], now()).unwrap_err();
    assert_eq!(err, WorkflowError::not_found("step 999"));
}

#[test]
fn an_actor_outside_the_snapshot_who_is_no_user_is_unknown_user() {
    let err = decide_as(&instance(), &approve(101, 99, None), None, &[], now()).unwrap_err();
    assert_eq!(
        err,
        WorkflowError::UnknownUser {
            user: uid(99),
            field: "acted_by_user_id",
        }
    );
    // A user outside the snapshot stays "not an approver".
    let err = decide_as(&instance(), &approve(101, 2, None), Some(true), &[], now()).unwrap_err();
    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: 101,
        }
    );
}

#[test]
fn eligibility_is_the_snapshot_even_for_an_actor_gone_from_the_directory() {
    // User 4 is in the snapshot but no longer a user: it may still act.
    let decided = decide_as(&instance(), &approve(101, 4, None), None, &[], now()).unwrap();
    assert_eq!(decided.changed_steps[0].acted_by_user_id, Some(uid(4)));
    // And the step's state is checked after who may act.
    let err = decide_as(&instance(), &approve(102, 2, None), Some(true), &[], now()).unwrap_err();
    assert_not_actionable(err, 102, StepStatus::Pending);
}
